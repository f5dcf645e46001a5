-- `scripts/bench.sh payouts`, set-up: 40 organizations with Stripe Connect accounts, one event
-- and package each, and paid orders in three groups (the sequential baseline, the concurrent
-- run through process_payout_queue(), and the payout worker).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.payout_orders, bench.payout_results;
CREATE TABLE bench.payout_results (measure text, payouts int, seconds numeric, per_second numeric, baseline numeric,
                                   ratio numeric, target text);
INSERT INTO sponsorship.organizations (id, name)
SELECT md5('pay-org' || g)::uuid, 'Payout org ' || g FROM generate_series(1, 40) g;
INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id, platform_fee_bps, minimum_payout_cents)
SELECT md5('pay-org' || g)::uuid, 'acct_1Bench' || g, 300 + g * 5, 100 FROM generate_series(1, 40) g;
INSERT INTO sponsorship.events (id, org_id, title, start_at)
SELECT md5('pay-event' || g)::uuid, md5('pay-org' || g)::uuid, 'Payout event ' || g, now() + interval '60 days'
  FROM generate_series(1, 40) g;
INSERT INTO sponsorship.sponsors (id, name) VALUES (md5('pay-sponsor')::uuid, 'Payout bench brand');
INSERT INTO sponsorship.sponsorship_packages (id, event_id, title, price_cents, currency, inventory)
SELECT md5('pay-package' || g)::uuid, md5('pay-event' || g)::uuid, 'Gold', 250000, 'USD', 1000000
  FROM generate_series(1, 40) g;
CREATE TABLE bench.payout_orders AS
SELECT md5('pay-order' || grp || g)::uuid AS id, grp, 1 + g % 40 AS org_no, 50000 + (g * 7919) % 900000 AS amount_cents
  FROM (VALUES ('sequential', :sequential), ('concurrent', :payouts), ('worker', :payouts)) v(grp, n),
       generate_series(1, n) g;
INSERT INTO sponsorship.sponsorship_orders (id, package_id, sponsor_id, event_id, amount_cents, currency, status,
                                            stripe_charge_id)
SELECT o.id, md5('pay-package' || o.org_no)::uuid, md5('pay-sponsor')::uuid, md5('pay-event' || o.org_no)::uuid,
       o.amount_cents, 'USD', 'accepted', 'ch_bench' || replace(o.id::text, '-', '')
  FROM bench.payout_orders o;
ANALYZE;
