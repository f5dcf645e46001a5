-- `scripts/bench.sh fee`: calculate_platform_fee over a table of orders, against a bare scan
-- of the same table and against the same rule in PL/pgSQL with numeric, in one session.
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.fee_rows, bench.fee_results;
CREATE TABLE bench.fee_results (measure text, value numeric, unit text, baseline numeric, ratio numeric, target text);
-- 60 organizations, a third on the platform default, the rest with their own rate, floor and cap
INSERT INTO sponsorship.organizations (id, name) SELECT md5('fee-org' || g)::uuid, 'Org ' || g FROM generate_series(1, 60) g;
INSERT INTO sponsorship.payout_configurations (org_id, platform_fee_bps, min_fee_cents, max_fee_cents)
SELECT md5('fee-org' || g)::uuid, 250 + g * 10, 50, 2000000 FROM generate_series(1, 60) g WHERE g % 3 <> 0;
CREATE TABLE bench.fee_rows AS
SELECT 1000 + (g::bigint * 7919) % 5000000 AS amount_cents, md5('fee-org' || (1 + g % 60))::uuid AS org_id
  FROM generate_series(1, :rows) g;
ANALYZE bench.fee_rows;

-- The same rule written as well as PL/pgSQL allows: one query for the organization, numeric
-- arithmetic, round half up.
CREATE OR REPLACE FUNCTION bench.plpgsql_platform_fee(p_amount bigint, p_org uuid) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, sponsorship
AS $fn$
DECLARE
    v_rate numeric; v_min bigint; v_max bigint; v_fee numeric;
BEGIN
    IF p_amount IS NULL OR p_amount < 0 THEN
        RAISE EXCEPTION 'bad amount' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT c.platform_fee_bps, c.min_fee_cents, c.max_fee_cents INTO v_rate, v_min, v_max
      FROM sponsorship.payout_configurations c WHERE c.org_id = p_org;
    v_rate := COALESCE(v_rate, current_setting('sponsorship.platform_fee_bps')::numeric);
    v_fee := round(p_amount::numeric * v_rate / 10000);
    IF v_min IS NOT NULL THEN v_fee := GREATEST(v_fee, v_min); END IF;
    IF v_max IS NOT NULL THEN v_fee := LEAST(v_fee, v_max); END IF;
    RETURN LEAST(v_fee, p_amount)::bigint;
END
$fn$;

DO $$
DECLARE
    t0 timestamptz; bare float8; rust float8; plpgsql float8; n bigint; mismatches bigint; best_bare float8 := 1e9;
    best_rust float8 := 1e9; x bigint;
BEGIN
    SELECT count(*) INTO n FROM bench.fee_rows;
    -- the two agree on every row of a sample
    SELECT count(*) INTO mismatches FROM (SELECT * FROM bench.fee_rows LIMIT 20000) r
     WHERE sponsorship.calculate_platform_fee(amount_cents, org_id) <> bench.plpgsql_platform_fee(amount_cents, org_id);
    IF mismatches > 0 THEN
        RAISE EXCEPTION '% rows where the two disagree', mismatches;
    END IF;
    -- best of five runs each, alternating
    FOR i IN 1..5 LOOP
        t0 := clock_timestamp();
        SELECT sum(amount_cents) INTO x FROM bench.fee_rows;
        best_bare := least(best_bare, extract(epoch FROM clock_timestamp() - t0));
        t0 := clock_timestamp();
        SELECT sum(sponsorship.calculate_platform_fee(amount_cents, org_id)) INTO x FROM bench.fee_rows;
        best_rust := least(best_rust, extract(epoch FROM clock_timestamp() - t0));
    END LOOP;
    t0 := clock_timestamp();
    SELECT sum(bench.plpgsql_platform_fee(amount_cents, org_id)) INTO x FROM (SELECT * FROM bench.fee_rows LIMIT 100000) r;
    plpgsql := extract(epoch FROM clock_timestamp() - t0) / least(n, 100000);
    INSERT INTO bench.fee_results VALUES
      ('bare scan: sum(amount_cents) over ' || n || ' rows', round((best_bare * 1e9 / n)::numeric, 1), 'ns/row', NULL, NULL, ''),
      ('sum(calculate_platform_fee(amount_cents, org_id))', round((best_rust * 1e9 / n)::numeric, 1), 'ns/row', NULL, NULL, ''),
      ('calculate_platform_fee: added per row over the bare scan', round(((best_rust - best_bare) * 1e9 / n)::numeric, 1),
       'ns/row', 50, round(((best_rust - best_bare) * 1e9 / n / 50)::numeric, 2), '<= 50 ns (ratio <= 1)'),
      ('per call: the same rule in PL/pgSQL with numeric', round((plpgsql * 1e9)::numeric, 0), 'ns/call',
       round((best_rust * 1e9 / n)::numeric, 1), round((plpgsql / (best_rust / n))::numeric, 1), '>= 10x slower than Rust');
END $$;
\echo
\echo '━━ Platform fee: cost per row ━━'
SELECT measure, value, unit, baseline AS rust_ns, ratio || 'x' AS ratio, target FROM bench.fee_results;
