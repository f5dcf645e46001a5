-- pgbench (scripts/soak.sh): marketplace reads
\set e random(1, 30)
\set s random(1, 40)
SELECT count(*) FROM sponsorship.fn_compute_event_matches(md5('e' || :e)::uuid);
SELECT score FROM sponsorship.fn_compute_match_score(md5('e' || :e)::uuid, md5('s' || :s)::uuid);
SELECT count(*) FROM (SELECT * FROM sponsorship.v_event_marketplace LIMIT 20) v;
SELECT count(*) FROM sponsorship.sponsorship_matches WHERE sponsor_id = md5('s' || :s)::uuid;
