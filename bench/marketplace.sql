-- A synthetic marketplace for the matching benchmark: :sponsors sponsors and :events events,
-- every one with a 384-dimension embedding, audiences, packages and regions.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.77) \gset
ALTER TABLE sponsorship.sponsor_profiles DISABLE TRIGGER USER;
ALTER TABLE sponsorship.events DISABLE TRIGGER USER;
ALTER TABLE sponsorship.event_audience_insights DISABLE TRIGGER USER;
ALTER TABLE sponsorship.sponsorship_packages DISABLE TRIGGER USER;
CREATE TEMP TABLE cities (n int, city text, country text, currency text);
INSERT INTO cities VALUES (0,'Austin','US','USD'),(1,'New York','US','USD'),(2,'Berlin','DE','EUR'),(3,'Paris','FR','EUR'),
  (4,'London','GB','GBP'),(5,'Toronto','CA','CAD'),(6,'Chicago','US','USD'),(7,'Denver','US','USD'),(8,'Madrid','ES','EUR'),
  (9,'Tokyo','JP','JPY');
INSERT INTO sponsorship.organizations (id, name) SELECT md5('bo' || g)::uuid, 'Bench org ' || g FROM generate_series(1, 100) g;
INSERT INTO sponsorship.events (id, org_id, title, description, category, city, country, start_at, end_at, description_embedding)
SELECT md5('be' || g)::uuid, md5('bo' || (1 + g % 100))::uuid, 'Bench event ' || g, 'A benchmark event.',
       (ARRAY['music','tech','sports','food_drink','arts','business'])[1 + g % 6], c.city, c.country,
       now() + ((g % 600 - 200) || ' days')::interval, now() + ((g % 600 - 199) || ' days')::interval,
       (SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 384) WHERE g > 0)::vector
  FROM generate_series(1, :events) g JOIN cities c ON c.n = g % 10;
INSERT INTO sponsorship.event_audience_insights (event_id, attendee_count, age_segments, geo_distribution,
                                                 engagement_score, ticket_conversion_rate, social_mentions, sentiment_score)
SELECT e.id, 100 + (random() * 20000)::int,
       jsonb_build_object('18-24', 0.2, '25-34', 0.35, '35-44', 0.25, '45-54', 0.1, '55+', 0.1),
       jsonb_build_object(e.city, 0.6, 'Elsewhere in ' || e.country, 0.3, 'International', 0.1),
       round((random() * 100)::numeric, 3), round((random() * 0.2)::numeric, 6), (random() * 5000)::int,
       round((random() * 1.6 - 0.6)::numeric, 3)
  FROM sponsorship.events e WHERE e.title LIKE 'Bench event %';
INSERT INTO sponsorship.sponsorship_packages (event_id, tier, title, price_cents, currency, inventory)
SELECT e.id, t.tier, initcap(t.tier), (t.base * (0.5 + random()))::bigint, c.currency, 3
  FROM sponsorship.events e JOIN cities c ON c.city = e.city
 CROSS JOIN (VALUES ('gold', 800000), ('silver', 300000), ('bronze', 80000)) t(tier, base)
 WHERE e.title LIKE 'Bench event %';
INSERT INTO sponsorship.sponsors (id, name, industry) SELECT md5('bs' || g)::uuid, 'Bench sponsor ' || g,
       (ARRAY['Beverages','Fintech','Sportswear','Telecom'])[1 + g % 4] FROM generate_series(1, :sponsors) g;
INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents, currency, target_audience, preferred_categories,
                                          regions, objectives_embedding)
SELECT md5('bs' || g)::uuid, (1000000 + random() * 300000000)::bigint, (ARRAY['USD','USD','EUR','GBP'])[1 + g % 4],
       jsonb_build_object('age_segments', jsonb_build_object('18-24', 0.2 + (g % 3) * 0.1, '25-34', 0.5, '35-44', 0.3 - (g % 3) * 0.1),
                          'interests', ARRAY[(ARRAY['music','tech','sports','food_drink'])[1 + g % 4]],
                          'regions', ARRAY[(ARRAY['US','DE','Elsewhere','global'])[1 + g % 4]]),
       ARRAY[(ARRAY['music','tech','sports','food_drink','arts','business'])[1 + g % 6]],
       ARRAY[(ARRAY['Austin','US','Berlin','global','Chicago','FR','Denver'])[1 + g % 7]],
       (SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 384) WHERE g > 0)::vector
  FROM generate_series(1, :sponsors) g;
ALTER TABLE sponsorship.sponsor_profiles ENABLE TRIGGER USER;
ALTER TABLE sponsorship.events ENABLE TRIGGER USER;
ALTER TABLE sponsorship.event_audience_insights ENABLE TRIGGER USER;
ALTER TABLE sponsorship.sponsorship_packages ENABLE TRIGGER USER;
ANALYZE;
SELECT sponsorship.refresh_event_quality_scores() AS quality_rows \gset
