-- Views of SPEC §2. All listed views are security_invoker: they show what the caller's RLS
-- allows. Per-event and per-sponsor aggregates are computed in their own LATERAL subqueries,
-- so no aggregate fans out over a join. Money is reported per currency (a jsonb object
-- currency -> minor units), never summed across currencies.

-- Materialized views cannot carry RLS, so callers reach quality scores through this view,
-- which applies the events read rule itself. It deliberately runs with its owner's rights
-- (not security_invoker) because the materialized view is not granted to API roles.
-- The rule is spelled out (rather than calling can_read_event) so public rows are decided
-- without a function call.
-- security_barrier: a caller's own conditions cannot run before this rule.
CREATE VIEW sponsorship.event_quality_scores WITH (security_barrier) AS
SELECT q.*
  FROM sponsorship.mv_event_quality_scores q
  JOIN sponsorship.events e ON e.id = q.event_id
 WHERE e.visibility = 'public'
    OR sponsorship.has_org_role(e.org_id, 'viewer')
    OR pg_catalog.pg_has_role('service_role', 'USAGE');
COMMENT ON VIEW sponsorship.event_quality_scores IS
    'mv_event_quality_scores restricted to the events the caller may read.';

CREATE VIEW sponsorship.v_event_performance_summary WITH (security_invoker = true) AS
SELECT e.id                        AS event_id,
       e.org_id,
       e.title,
       e.category,
       e.city,
       e.country,
       e.start_at,
       e.end_at,
       e.visibility,
       e.capacity,
       i.attendee_count,
       i.avg_dwell_time_ms,
       i.engagement_score,
       i.ticket_conversion_rate,
       i.social_mentions,
       i.sentiment_score,
       q.final_quality_score,
       q.quality_tier,
       COALESCE(imp.impressions, 0)          AS impressions,
       COALESCE(imp.clicks, 0)               AS clicks,
       COALESCE(imp.sponsor_impressions, 0)  AS sponsor_impressions,
       COALESCE(tix.tickets_sold, 0)         AS tickets_sold,
       COALESCE(tix.ticket_revenue_cents_by_currency, '{}'::jsonb) AS ticket_revenue_cents_by_currency,
       COALESCE(pkg.active_packages, 0)      AS active_packages,
       COALESCE(pkg.package_units_offered, 0) AS package_units_offered,
       COALESCE(pkg.package_units_sold, 0)   AS package_units_sold,
       COALESCE(ord.paid_orders, 0)          AS paid_orders,
       COALESCE(ord.sponsors, 0)             AS sponsors,
       COALESCE(ord.sponsorship_revenue_cents_by_currency, '{}'::jsonb) AS sponsorship_revenue_cents_by_currency,
       COALESCE(tix.ticket_page_views, 0)    AS ticket_page_views  -- 0.2.0
  FROM sponsorship.events e
  LEFT JOIN sponsorship.event_audience_insights i ON i.event_id = e.id
  LEFT JOIN sponsorship.event_quality_scores q ON q.event_id = e.id
  LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE x.kind = 'view')          AS impressions,
               count(*) FILTER (WHERE x.kind = 'click')         AS clicks,
               count(*) FILTER (WHERE x.sponsor_id IS NOT NULL) AS sponsor_impressions
          FROM sponsorship.event_impressions x WHERE x.event_id = e.id) imp ON true
  LEFT JOIN LATERAL (
        SELECT sum(c.views)::bigint AS ticket_page_views,
               sum(c.tickets)::bigint AS tickets_sold,
               jsonb_object_agg(c.currency, c.revenue) FILTER (WHERE c.tickets > 0) AS ticket_revenue_cents_by_currency
          FROM (SELECT t.currency, sum(t.views) AS views, sum(t.tickets) AS tickets, sum(t.revenue_cents) AS revenue
                  FROM sponsorship.ticket_analytics t WHERE t.event_id = e.id
                 GROUP BY t.currency) c) tix ON true
  LEFT JOIN LATERAL (
        SELECT count(*) AS active_packages,
               sum(p.inventory)::bigint AS package_units_offered,
               sum(p.sold)::bigint AS package_units_sold
          FROM sponsorship.sponsorship_packages p WHERE p.event_id = e.id AND p.is_active) pkg ON true
  LEFT JOIN LATERAL (
        SELECT sum(c.orders)::bigint AS paid_orders,
               (SELECT count(DISTINCT o2.sponsor_id) FROM sponsorship.sponsorship_orders o2
                 WHERE o2.event_id = e.id AND o2.status IN ('accepted','live','completed')
                   AND o2.stripe_charge_id IS NOT NULL) AS sponsors,
               jsonb_object_agg(c.currency, c.amount) AS sponsorship_revenue_cents_by_currency
          FROM (SELECT o.currency, count(*) AS orders, sum(o.amount_cents) AS amount
                  FROM sponsorship.sponsorship_orders o
                 WHERE o.event_id = e.id AND o.status IN ('accepted','live','completed')
                   AND o.stripe_charge_id IS NOT NULL
                 GROUP BY o.currency) c) ord ON true;
COMMENT ON VIEW sponsorship.v_event_performance_summary IS
    'Per event: audience, quality, impressions, ticket-page views and tickets sold, packages and paid sponsorship '
    'revenue (per currency).';

-- 85_operations.sql appends the event's recent attention (mv_package_card_stats) to it.
CREATE VIEW sponsorship.v_sponsorship_package_cards WITH (security_invoker = true) AS
SELECT p.id                      AS package_id,
       p.event_id,
       e.title                   AS event_title,
       e.category                AS event_category,
       e.city                    AS event_city,
       e.country                 AS event_country,
       e.start_at                AS event_start_at,
       p.tier,
       p.title,
       p.description,
       p.package_type,
       p.benefits,
       p.price_cents,
       p.currency,
       p.inventory,
       p.sold,
       p.inventory - p.sold      AS remaining,
       p.sold >= p.inventory     AS sold_out,
       p.expected_reach,
       CASE WHEN p.expected_reach > 0
            THEN round(p.price_cents * 1000.0 / p.expected_reach)::bigint END AS cost_per_thousand_reach_cents,
       q.final_quality_score     AS event_quality_score,
       q.quality_tier            AS event_quality_tier
  FROM sponsorship.sponsorship_packages p
  JOIN sponsorship.events e ON e.id = p.event_id
  LEFT JOIN sponsorship.event_quality_scores q ON q.event_id = p.event_id
 WHERE p.is_active;
COMMENT ON VIEW sponsorship.v_sponsorship_package_cards IS
    'Active packages as shown to sponsors: event, price, remaining inventory, cost per thousand expected reach, event quality.';

-- A sponsor's public track record: how many events it has sponsored (paid, live or
-- completed deals). Orders themselves are private to the parties, so this count comes from a
-- SECURITY DEFINER function that reveals nothing but the count.
CREATE FUNCTION sponsorship.sponsor_events_sponsored(p_sponsor_id uuid) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
AS $fn$
    SELECT count(DISTINCT o.event_id)
      FROM sponsorship.sponsorship_orders o
     WHERE o.sponsor_id = p_sponsor_id AND o.status IN ('live','completed') AND o.stripe_charge_id IS NOT NULL
$fn$;
COMMENT ON FUNCTION sponsorship.sponsor_events_sponsored(uuid) IS
    'Public track record of a sponsor: the number of events it has sponsored (live or completed, paid deals).';

-- A sponsor's public ROI record: how its evaluated activations delivered against what their
-- packages promised. Activations are private to the parties, so this reveals aggregates
-- only, and only over at least 3 evaluations (with fewer, one deal's figures could be read
-- off), rounded to two decimals.
CREATE FUNCTION sponsorship.sponsor_roi_record(p_sponsor_id uuid,
                                               OUT evaluated_sponsorships bigint,
                                               OUT median_reach_delivered_ratio numeric,
                                               OUT expectation_met_share numeric)
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
AS $fn$
    SELECT n,
           CASE WHEN n >= 3 THEN round(median::numeric, 2) END,
           CASE WHEN n >= 3 AND judged > 0 THEN round(met::numeric / judged, 2) END
      FROM (SELECT count(*) AS n,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY (es.roi_summary ->> 'reach_delivered_ratio')::float8) AS median,
                   count(*) FILTER (WHERE es.roi_summary ->> 'verdict' IN ('met', 'exceeded')) AS met,
                   count(*) FILTER (WHERE es.roi_summary ->> 'reach_delivered_ratio' IS NOT NULL) AS judged
              FROM sponsorship.event_sponsorships es
             WHERE es.sponsor_id = p_sponsor_id AND es.status = 'evaluated') x
$fn$;
COMMENT ON FUNCTION sponsorship.sponsor_roi_record(uuid) IS
    'Public ROI record of a sponsor: evaluated activations and, from 3 of them on, the median reach delivered against '
    'expected and the share of those with an expectation that met or exceeded it (two decimals).';

CREATE VIEW sponsorship.v_sponsor_marketplace WITH (security_invoker = true) AS
SELECT s.id                                    AS sponsor_id,
       s.name,
       s.industry,
       s.company_size,
       s.website_url,
       s.logo_url,
       s.brand_values,
       sp.annual_budget_cents,
       sp.currency,
       sp.preferred_categories,
       sp.regions,
       sp.brand_objectives ->> 'description'   AS objectives_description,
       sp.objectives_embedding IS NOT NULL     AS has_objectives_embedding,
       sponsorship.sponsor_events_sponsored(s.id) AS events_sponsored,
       s.created_at                            AS listed_since,
       -- 0.2.0
       roi.evaluated_sponsorships,
       roi.median_reach_delivered_ratio,
       roi.expectation_met_share
  FROM sponsorship.sponsors s
  LEFT JOIN sponsorship.sponsor_profiles sp ON sp.sponsor_id = s.id
  CROSS JOIN LATERAL sponsorship.sponsor_roi_record(s.id) roi;
COMMENT ON VIEW sponsorship.v_sponsor_marketplace IS
    'Sponsor listings with their profile (budget, categories, regions, objectives) and public track record: events '
    'sponsored and the ROI of evaluated activations (median reach delivered against expected, share that met it).';

CREATE VIEW sponsorship.v_event_marketplace WITH (security_invoker = true) AS
SELECT e.id                               AS event_id,
       e.org_id,
       org.name                           AS organizer,
       e.title,
       e.description,
       e.category,
       e.city,
       e.country,
       e.start_at,
       e.end_at,
       e.capacity,
       i.attendee_count,
       i.engagement_score,
       q.final_quality_score,
       q.quality_tier,
       COALESCE(pkg.available_packages, 0) AS available_packages,
       pkg.cheapest_price_cents,
       pkg.cheapest_currency,
       COALESCE(pkg.sponsorships_sold, 0) AS sponsorships_sold
  FROM sponsorship.events e
  JOIN sponsorship.organizations org ON org.id = e.org_id
  LEFT JOIN sponsorship.event_audience_insights i ON i.event_id = e.id
  LEFT JOIN sponsorship.event_quality_scores q ON q.event_id = e.id
  LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE p.sold < p.inventory) AS available_packages,
               (array_agg(p.price_cents ORDER BY p.price_cents) FILTER (WHERE p.sold < p.inventory))[1] AS cheapest_price_cents,
               (array_agg(p.currency ORDER BY p.price_cents) FILTER (WHERE p.sold < p.inventory))[1]    AS cheapest_currency,
               sum(p.sold)::bigint AS sponsorships_sold
          FROM sponsorship.sponsorship_packages p
         WHERE p.event_id = e.id AND p.is_active) pkg ON true
 WHERE COALESCE(e.end_at, e.start_at) >= now();
COMMENT ON VIEW sponsorship.v_event_marketplace IS
    'Events that have not ended, with organizer, audience, quality, packages still available (cheapest first) and package units sold.';

-- v_semantic_event_recommendations and v_semantic_sponsor_recommendations: 60_embeddings.sql.

CREATE VIEW sponsorship.v_marketplace_analytics WITH (security_invoker = true) AS
SELECT (SELECT count(*) FROM sponsorship.sponsors)                                   AS sponsors,
       (SELECT count(*) FROM sponsorship.organizations)                              AS organizations,
       (SELECT count(*) FROM sponsorship.events)                                     AS events,
       (SELECT count(*) FROM sponsorship.events WHERE start_at >= now())             AS upcoming_events,
       (SELECT count(*) FROM sponsorship.sponsorship_packages WHERE is_active)       AS active_packages,
       (SELECT count(*) FROM sponsorship.sponsorship_orders)                         AS orders,
       (SELECT COALESCE(jsonb_object_agg(status, n), '{}'::jsonb)
          FROM (SELECT status, count(*) AS n FROM sponsorship.sponsorship_orders GROUP BY status) s)
                                                                                     AS orders_by_status,
       (SELECT COALESCE(jsonb_object_agg(currency, cents), '{}'::jsonb)
          FROM (SELECT currency, sum(amount_cents) AS cents FROM sponsorship.sponsorship_orders
                 WHERE status IN ('accepted','live','completed') AND stripe_charge_id IS NOT NULL
                 GROUP BY currency) s)                                                AS gross_volume_cents_by_currency,
       (SELECT COALESCE(jsonb_object_agg(currency, cents), '{}'::jsonb)
          FROM (SELECT currency, sum(application_fee_cents) AS cents FROM sponsorship.sponsorship_orders
                 WHERE status IN ('accepted','live','completed') AND application_fee_cents IS NOT NULL
                 GROUP BY currency) s)                                                AS platform_fees_cents_by_currency,
       (SELECT COALESCE(jsonb_object_agg(currency, cents), '{}'::jsonb)
          FROM (SELECT currency, sum(amount_cents) AS cents FROM sponsorship.sponsorship_payouts
                 WHERE status = 'completed' GROUP BY currency) s)                     AS paid_out_cents_by_currency,
       (SELECT count(*) FROM sponsorship.sponsorship_matches)                        AS scored_matches,
       (SELECT round(avg(score), 5) FROM sponsorship.sponsorship_matches)            AS avg_match_score,
       (SELECT round(count(*) FILTER (WHERE status = 'accepted')::numeric
                     / NULLIF(count(*) FILTER (WHERE status IN ('accepted','rejected')), 0), 4)
          FROM sponsorship.sponsorship_matches)                                      AS match_acceptance_rate,
       now()                                                                         AS computed_at;
COMMENT ON VIEW sponsorship.v_marketplace_analytics IS
    'One row of marketplace totals: parties, events, packages, orders by status, gross volume, fees and payouts per currency, matches.';
