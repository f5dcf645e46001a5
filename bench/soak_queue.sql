-- pgbench (scripts/soak.sh): direct processing of both queues, beside the workers, and payouts
-- queued again and again (idempotent)
\set o random(1, 150)
SELECT sponsorship.update_sponsorship_matches(10);
SELECT sponsorship.queue_sponsorship_payout(md5('order' || :o)::uuid);
SELECT sponsorship.process_payout_queue(5);
