-- pgbench (scripts/soak.sh): direct processing of both queues, beside the workers, and payouts
-- queued again and again (idempotent), and a burst of pairs queued ahead of the edits (passes of
-- pairs alone write side by side with each other)
\set o random(1, 150)
\set e random(0, 29)
\set s random(0, 39)
\set a random(1, 29)
\set b random(1, 39)
SELECT sponsorship.enqueue_recalc(md5('e' || (1 + (g * :a + :e) % 30))::uuid,
                                  md5('s' || (1 + (g * :b + :s) % 40))::uuid, 'pair', 2)
  FROM generate_series(1, 8) g;
SELECT sponsorship.update_sponsorship_matches(10);
SELECT sponsorship.queue_sponsorship_payout(md5('order' || :o)::uuid);
SELECT sponsorship.process_payout_queue(5);
