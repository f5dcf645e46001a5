-- The marketplace of `bash scripts/soak.sh` and of tests/integration/{concurrency,crash}.rs
-- (which read this file; their SPONSORS, EVENTS and ORDERS are the counts below):
-- 3 organizers, 30 events, 40 sponsors with profiles, 150 paid orders, and a note of which
-- process finished each recalculation queue row (a row processed twice shows twice).
SET client_min_messages = warning;
CREATE EXTENSION sponsorship CASCADE;
-- (before any row: the workers start on the queue the moment the extension exists)
-- Who processed each queue row, noted by the test: a row processed twice shows twice.
CREATE TABLE public.recalc_done (queue_id bigint, by_whom text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION public.note_recalc_done() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF OLD.processed_at IS NULL AND NEW.processed_at IS NOT NULL THEN
        INSERT INTO public.recalc_done (queue_id, by_whom)
        VALUES (NEW.id, COALESCE((SELECT CASE WHEN a.backend_type = 'client backend' THEN 'direct call'
                                              ELSE a.backend_type END
                                    FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()),
                                 'unknown process'));
    END IF;
    RETURN NEW;
END $f$;
CREATE TRIGGER note_recalc_done AFTER UPDATE ON sponsorship.fit_recalc_queue
    FOR EACH ROW EXECUTE FUNCTION public.note_recalc_done();
SELECT setseed(0.25);
INSERT INTO sponsorship.organizations (id, name)
SELECT md5('o' || g)::uuid, 'Org ' || g FROM generate_series(1, 3) g;
INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id)
SELECT md5('o' || g)::uuid, 'acct_1Conc' || g FROM generate_series(1, 3) g;
-- events far ahead: their temporal factor is 1, so scores do not drift while we check
INSERT INTO sponsorship.events (id, org_id, title, category, city, country, start_at, description_embedding)
SELECT md5('e' || g)::uuid, md5('o' || (1 + g % 3))::uuid, 'Event ' || g,
       (ARRAY['music','tech','sports'])[1 + g % 3], (ARRAY['Austin','Berlin','Dallas'])[1 + g % 3],
       (ARRAY['US','DE','US'])[1 + g % 3], now() + ((100 + g) || ' days')::interval,
       (SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 384) WHERE g > 0)::vector
  FROM generate_series(1, 30) g;
INSERT INTO sponsorship.event_audience_insights (event_id, attendee_count, age_segments, geo_distribution, engagement_score)
SELECT md5('e' || g)::uuid, 100 * g, jsonb_build_object('18-24', 0.3, '25-34', 0.5), jsonb_build_object('Austin', 0.5),
       (g * 4) % 100
  FROM generate_series(1, 30) g;
INSERT INTO sponsorship.sponsorship_packages (id, event_id, title, price_cents, currency, inventory)
SELECT md5('p' || g || '-' || k)::uuid, md5('e' || g)::uuid, 'P' || k, 100000 * k * g, 'USD', 1000
  FROM generate_series(1, 30) g, generate_series(1, 2) k;
INSERT INTO sponsorship.sponsors (id, name) SELECT md5('s' || g)::uuid, 'Sponsor ' || g FROM generate_series(1, 40) g;
INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents, currency, target_audience,
                                           preferred_categories, regions, objectives_embedding)
SELECT md5('s' || g)::uuid, 1000000 * g, 'USD',
       jsonb_build_object('age_segments', jsonb_build_object('25-34', 1), 'interests', ARRAY['music']),
       ARRAY[(ARRAY['music','tech','sports'])[1 + g % 3]], ARRAY[(ARRAY['Austin','US','global','Dallas'])[1 + g % 4]],
       (SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 384) WHERE g > 0)::vector
  FROM generate_series(1, 40) g;
INSERT INTO sponsorship.sponsorship_orders (id, package_id, sponsor_id, event_id, amount_cents, status, stripe_charge_id)
SELECT md5('order' || g)::uuid, md5('p' || (1 + g % 30) || '-1')::uuid, md5('s' || (1 + g % 40))::uuid,
       md5('e' || (1 + g % 30))::uuid, 100000 + g, 'accepted', 'ch_conc' || g
  FROM generate_series(1, 150) g;
SELECT sponsorship.refresh_event_quality_scores();
