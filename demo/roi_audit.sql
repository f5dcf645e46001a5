-- After the events: what each completed sponsorship delivered, and the audit trail of money
-- settings and match decisions.
\set ON_ERROR_STOP on
\pset footer off
\pset null '—'
SET client_min_messages = warning;

-- A minor-unit amount in major units with the currency's decimals: 1234500 USD -> USD 12,345.00
CREATE FUNCTION pg_temp.money(p_minor bigint, p_currency text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT p_currency || ' ' || CASE sponsorship.currency_exponent(p_currency)
               WHEN 0 THEN to_char(p_minor, 'FM999,999,999,990')
               ELSE to_char(p_minor::numeric / 10 ^ sponsorship.currency_exponent(p_currency),
                            'FM999,999,999,990.' || repeat('0', sponsorship.currency_exponent(p_currency))) END
$$;

\echo
\echo '━━ Post-event ROI: evaluate_completed_sponsorships() evaluates every completed activation ━━'
SELECT count(*) AS completed_activations,
       count(*) FILTER (WHERE o.status NOT IN ('accepted','live','completed') OR o.stripe_charge_id IS NULL)
           AS of_orders_no_longer_paid_not_evaluated
  FROM sponsorship.event_sponsorships es JOIN sponsorship.sponsorship_orders o ON o.id = es.order_id
 WHERE es.status = 'completed';
SELECT clock_timestamp() AS t0 \gset
SELECT sponsorship.evaluate_completed_sponsorships(100000) AS evaluated,
       round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 2) AS seconds;

\echo
\echo '    verdicts (unique reach against the package''s expected reach; activations promising more than'
\echo '    3,000 people have no placement data in this demo, so they come out no_delivery)'
SELECT verdict, count(*) AS activations,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct,
       round(avg(reach_delivered_ratio), 3) AS avg_reach_delivered,
       round(avg(engagement_rate), 3) AS avg_engagement_rate
  FROM sponsorship.v_sponsorship_roi
 GROUP BY verdict
 ORDER BY array_position(ARRAY['exceeded','met','nearly_met','under_delivered','no_expectation','no_delivery'], verdict);

\echo
\echo '━━ A short ROI table (v_sponsorship_roi): two activations of each verdict, money in the order''s currency ━━'
SELECT left(r.sponsor_name, 22) AS sponsor,
       left(r.event_title, 28) AS event,
       r.tier,
       pg_temp.money(r.cost_cents, r.currency) AS paid,
       r.expected_reach AS expected,
       r.unique_reach AS reached,
       to_char(100 * r.reach_delivered_ratio, 'FM990.0') || '%' AS delivered,
       r.impressions,
       pg_temp.money(r.cpm_cents, r.currency) AS cpm,
       pg_temp.money(r.cost_per_engaged_attendee_cents, r.currency) AS per_engaged,
       to_char(100 * r.ticket_conversion_rate, 'FM990.0') || '%' AS ticket_conv,
       r.verdict
  FROM (SELECT v.*, row_number() OVER (PARTITION BY v.verdict ORDER BY v.event_sponsorship_id) AS n
          FROM sponsorship.v_sponsorship_roi v WHERE v.verdict <> 'no_delivery') r
 WHERE r.n <= 2
 ORDER BY array_position(ARRAY['exceeded','met','nearly_met','under_delivered','no_expectation'], r.verdict), r.sponsor_name;

\echo
\echo '    some keys of the stored summary of one of them (event_sponsorships.roi_summary)'
SELECT key, value
  FROM sponsorship.event_sponsorships es, jsonb_each(es.roi_summary)
 WHERE es.id = (SELECT event_sponsorship_id FROM sponsorship.v_sponsorship_roi WHERE verdict = 'met'
                 ORDER BY event_sponsorship_id LIMIT 1)
   AND key IN ('window_from','window_to','impressions','unique_reach','unattributed_impressions','engaged_attendees',
               'avg_dwell_ms','completion_rate','ticket_views','tickets_sold','ticket_revenue_cents_by_currency',
               'cpm_cents','cost_per_thousand_reach_cents','verdict_reason')
 ORDER BY key;

\echo
\echo '━━ The sponsor marketplace now carries each sponsor''s ROI record (best median delivery first) ━━'
SELECT left(name, 26) AS sponsor, industry, events_sponsored, evaluated_sponsorships,
       median_reach_delivered_ratio AS median_delivered, expectation_met_share AS met_share
  FROM sponsorship.v_sponsor_marketplace
 WHERE evaluated_sponsorships >= 3 AND median_reach_delivered_ratio > 0
 ORDER BY median_reach_delivered_ratio DESC, name
 LIMIT 6;

\echo
\echo '━━ The audit trail: who changed money settings or decided a match ━━'
\echo '    an organizer''s admin (through the API role) moves to weekly payouts and a new Connect account;'
\echo '    the platform (service_role) lowers that organizer''s fee; a sponsor''s editor accepts a match'
SELECT c.org_id AS audit_org, m.user_id AS audit_admin
  FROM sponsorship.payout_configurations c
  JOIN sponsorship.org_members m ON m.org_id = c.org_id AND m.role = 'admin'
 ORDER BY c.org_id LIMIT 1 \gset
SELECT m.id AS audit_match, sm.user_id AS audit_editor
  FROM sponsorship.sponsorship_matches m
  JOIN sponsorship.sponsor_members sm ON sm.sponsor_id = m.sponsor_id AND sm.role = 'editor'
 WHERE m.status IN ('pending','suggested')
 ORDER BY m.score DESC, m.id LIMIT 1 \gset
BEGIN;
SELECT set_config('request.jwt.claims', json_build_object('sub', :'audit_admin')::text, true) \gset
SET LOCAL ROLE authenticated;
UPDATE sponsorship.payout_configurations
   SET payout_schedule = 'weekly', stripe_connect_account_id = 'acct_demoNewAccount1'
 WHERE org_id = :'audit_org';
COMMIT;
BEGIN;
SET LOCAL ROLE service_role;
UPDATE sponsorship.payout_configurations SET platform_fee_bps = 350 WHERE org_id = :'audit_org';
COMMIT;
BEGIN;
SELECT set_config('request.jwt.claims', json_build_object('sub', :'audit_editor')::text, true) \gset
SET LOCAL ROLE authenticated;
UPDATE sponsorship.sponsorship_matches SET status = 'accepted' WHERE id = :'audit_match';
COMMIT;

SELECT l.id, to_char(l.occurred_at, 'HH24:MI:SS.MS') AS at, l.object_type, l.action,
       COALESCE(l.actor_role, '(' || (l.new_values ->> 'source') || ')') AS actor_role,
       left(l.actor_user_id::text, 8) AS actor_user,
       l.old_values, l.new_values
  FROM sponsorship.audit_log l
 WHERE l.org_id = :'audit_org' AND l.action = 'update' OR l.object_id = :'audit_match'::text
    OR l.object_type = 'platform_setting'
 ORDER BY l.id;

\echo
\echo '    audit rows cannot be changed, not even by the table''s owner:'
DO $$
BEGIN
    DELETE FROM sponsorship.audit_log WHERE id = (SELECT min(id) FROM sponsorship.audit_log);
    RAISE EXCEPTION 'an audit row was deleted';
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'DELETE refused (SQLSTATE %): %', SQLSTATE, SQLERRM;
END
$$;
SELECT count(*) AS audit_rows, count(*) FILTER (WHERE object_type = 'payout_configuration') AS money_settings,
       count(*) FILTER (WHERE object_type = 'sponsorship_match') AS match_decisions,
       count(*) FILTER (WHERE object_type = 'platform_setting') AS platform_setting
  FROM sponsorship.audit_log;
