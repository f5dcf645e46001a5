-- What a person wants to see after loading the demo marketplace.
\set ON_ERROR_STOP on
\pset footer off
\pset null '—'

\echo
\echo '━━ The marketplace ━━'
SELECT (SELECT count(*) FROM sponsorship.organizations)          AS organizers,
       (SELECT count(*) FROM sponsorship.sponsors)               AS sponsors,
       (SELECT count(*) FROM sponsorship.events)                 AS events,
       (SELECT count(*) FROM sponsorship.events WHERE start_at >= now()) AS upcoming,
       (SELECT count(*) FROM sponsorship.sponsorship_packages)   AS packages,
       (SELECT count(*) FROM sponsorship.sponsorship_orders)     AS orders,
       (SELECT count(*) FROM sponsorship.event_impressions)      AS impressions,
       (SELECT count(*) FROM sponsorship.ticket_analytics WHERE tickets > 0) AS ticket_sales;

\echo
\echo '━━ Raw facts land in monthly partitions (event_impressions, last 6 months) ━━'
SELECT tableoid::regclass AS partition, count(*) AS impressions,
       min(created_at)::date AS first_day, max(created_at)::date AS last_day
  FROM sponsorship.event_impressions
 WHERE created_at >= date_trunc('month', now()) - interval '5 months'
 GROUP BY tableoid ORDER BY first_day;

\echo
\echo '━━ Event quality (mv_event_quality_scores): every component and score in [0,1] ━━'
SELECT quality_tier, count(*) AS events,
       round(min(final_quality_score)::numeric, 3) AS min_score,
       round(avg(final_quality_score)::numeric, 3) AS avg_score,
       round(max(final_quality_score)::numeric, 3) AS max_score
  FROM sponsorship.mv_event_quality_scores
 GROUP BY quality_tier
 ORDER BY min(final_quality_score) DESC;

\echo
\echo '━━ The best upcoming public events (v_event_marketplace) ━━'
SELECT left(title, 38) AS event, city, category, start_at::date AS starts,
       round(final_quality_score::numeric, 3) AS quality, quality_tier AS tier,
       available_packages AS packages_left,
       to_char(cheapest_price_cents / CASE WHEN cheapest_currency = 'JPY' THEN 1 ELSE 100 END, 'FM999,999,990')
         || ' ' || cheapest_currency AS from_price
  FROM sponsorship.v_event_marketplace
 WHERE available_packages > 0
 ORDER BY final_quality_score DESC NULLS LAST
 LIMIT 8;

\echo
\echo '━━ Why one event scores what it does (quality components) ━━'
SELECT left(e.title, 40) AS event, q.engagement_rate::numeric(4,3) AS engage, q.conversion::numeric(4,3) AS convert,
       q.recency::numeric(4,3) AS recency, q.content::numeric(4,3) AS content,
       q.category_popularity::numeric(4,3) AS category, q.volume::numeric(4,3) AS volume,
       q.social_proof::numeric(4,3) AS social, q.sentiment::numeric(4,3) AS sentiment,
       q.final_quality_score::numeric(4,3) AS final
  FROM sponsorship.mv_event_quality_scores q JOIN sponsorship.events e ON e.id = q.event_id
 ORDER BY q.final_quality_score DESC LIMIT 3;

\echo
\echo '━━ Package cards with the lowest cost per thousand expected reach (premium/high events) ━━'
SELECT left(event_title, 34) AS event, event_city AS city, tier, package_type AS type,
       price_cents, currency, expected_reach, cost_per_thousand_reach_cents AS cpm_cents, remaining
  FROM sponsorship.v_sponsorship_package_cards
 WHERE event_quality_tier IN ('premium','high') AND NOT sold_out AND event_start_at > now()
 ORDER BY cost_per_thousand_reach_cents LIMIT 6;

\echo
\echo '━━ Sponsors with the longest track record (v_sponsor_marketplace) ━━'
SELECT name, industry, company_size AS size,
       to_char(annual_budget_cents / 100, 'FM$999,999,990') AS annual_budget,
       array_to_string(preferred_categories, ', ') AS categories,
       array_to_string(regions, ', ') AS regions, events_sponsored
  FROM sponsorship.v_sponsor_marketplace
 ORDER BY events_sponsored DESC, name LIMIT 6;

\echo
\echo '━━ Marketplace analytics (v_marketplace_analytics) ━━'
\x on
SELECT sponsors, organizations, events, upcoming_events, active_packages, orders,
       orders_by_status, gross_volume_cents_by_currency
  FROM sponsorship.v_marketplace_analytics;
\x off

\echo
\echo '━━ Row level security: what each caller sees ━━'
SELECT set_config('sponsorship.demo_org_viewer', md5('org-user-viewer:7')::uuid::text, false) IS NOT NULL AS _ \gset
BEGIN;
CREATE TEMP TABLE demo_rls (caller text, events int, orders int, payout_settings int, queue_rows int);
GRANT ALL ON demo_rls TO anon, authenticated, service_role;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '', true) \gset
INSERT INTO demo_rls SELECT 'anon (not signed in)', (SELECT count(*) FROM sponsorship.events), NULL, NULL, NULL;
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', json_build_object('sub', md5('org-user-viewer:7')::uuid, 'role', 'authenticated')::text, true) \gset
INSERT INTO demo_rls SELECT 'viewer of organizer #7', (SELECT count(*) FROM sponsorship.events),
       (SELECT count(*) FROM sponsorship.sponsorship_orders), (SELECT count(*) FROM sponsorship.payout_configurations), NULL;
SELECT set_config('request.jwt.claims', json_build_object('sub', md5('org-user-admin:7')::uuid, 'role', 'authenticated')::text, true) \gset
INSERT INTO demo_rls SELECT 'admin of organizer #7', (SELECT count(*) FROM sponsorship.events),
       (SELECT count(*) FROM sponsorship.sponsorship_orders), (SELECT count(*) FROM sponsorship.payout_configurations), NULL;
SELECT set_config('request.jwt.claims', json_build_object('sub', md5('sponsor-user-owner:12')::uuid, 'role', 'authenticated')::text, true) \gset
INSERT INTO demo_rls SELECT 'owner of sponsor #12', (SELECT count(*) FROM sponsorship.events),
       (SELECT count(*) FROM sponsorship.sponsorship_orders), (SELECT count(*) FROM sponsorship.payout_configurations), NULL;
RESET ROLE;
SET LOCAL ROLE service_role;
INSERT INTO demo_rls SELECT 'service_role', (SELECT count(*) FROM sponsorship.events),
       (SELECT count(*) FROM sponsorship.sponsorship_orders), (SELECT count(*) FROM sponsorship.payout_configurations),
       (SELECT count(*) FROM sponsorship.fit_recalc_queue);
RESET ROLE;
SELECT caller, events AS events_visible, orders AS orders_visible, payout_settings AS payout_settings_visible,
       queue_rows AS recalc_queue_visible FROM demo_rls;
ROLLBACK;
