-- pgbench (scripts/soak.sh): edits of what scores are computed from (each enqueues a recalculation)
\set e random(1, 30)
\set s random(1, 40)
\set budget random(1, 500)
\set share random(0, 80)
\set price random(1, 100)
UPDATE sponsorship.sponsor_profiles SET annual_budget_cents = 100000 * :budget WHERE sponsor_id = md5('s' || :s)::uuid;
UPDATE sponsorship.event_audience_insights
   SET age_segments = jsonb_build_object('25-34', :share / 100.0, '35-44', 0.2) WHERE event_id = md5('e' || :e)::uuid;
UPDATE sponsorship.sponsorship_packages SET price_cents = 50000 * :price WHERE id = md5('p' || :e || '-2')::uuid;
