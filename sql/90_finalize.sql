-- Runs last. Pins the search_path of every function of the extension (pg_catalog first,
-- pg_temp last, pgvector's schema wherever pgvector lives), and replaces PUBLIC's default
-- EXECUTE with grants to the API roles. Functions that must not be callable by API users
-- (SECURITY DEFINER maintenance) are for service_role only.

DO $pin$
DECLARE
    v_vector_schema  text;
    v_path           text;
    f                record;
BEGIN
    SELECT n.nspname INTO v_vector_schema
      FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'vector';
    v_path := 'pg_catalog, sponsorship';
    IF v_vector_schema IS NOT NULL AND v_vector_schema NOT IN ('pg_catalog', 'sponsorship') THEN
        v_path := v_path || ', ' || quote_ident(v_vector_schema);
    END IF;
    v_path := v_path || ', pg_temp';

    FOR f IN
        SELECT p.oid::regprocedure AS sig, p.prokind, p.proname
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'sponsorship'::regnamespace AND p.prokind IN ('f', 'p')
    LOOP
        -- The one exception: calculate_platform_fee is Rust that resolves no name through the
        -- search_path (its only query is schema-qualified), and is called once per row over
        -- whole tables of orders, where a pinned setting would cost microseconds per row.
        IF f.proname <> 'calculate_platform_fee' THEN
            EXECUTE format('ALTER %s %s SET search_path = %s',
                           CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig, v_path);
        END IF;
        EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC',
                       CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig);
    END LOOP;
END
$pin$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA sponsorship TO anon, authenticated, service_role;

REVOKE EXECUTE ON FUNCTION
    sponsorship.refresh_materialized_view(text, boolean),
    sponsorship.refresh_event_quality_scores(),
    sponsorship.ensure_month_partition(regclass, date),
    sponsorship.add_creator_as_owner(),
    sponsorship.touch_updated_at(),
    sponsorship.refresh_sponsor_event_fit_scores(),
    sponsorship.enqueue_recalc(uuid, uuid, text, int),
    sponsorship.update_sponsorship_matches(int),
    sponsorship.rescore_all_matches(int),
    sponsorship.set_scoring_weights(numeric, numeric, numeric, numeric, numeric, text),
    sponsorship.check_recalc_queue_health(),
    sponsorship.cleanup_recalc_queue(),
    sponsorship.fn_compute_match_matrix(int),
    sponsorship.match_matrix_arrays(int),
    sponsorship.worker_status(),
    sponsorship.match_kernel_benchmark(int),
    sponsorship.note_match_input_change(),
    sponsorship.fn_note_match_input_change(),
    sponsorship.fn_note_match_input_ddl(),
    sponsorship.prune_match_input_changes(interval),
    sponsorship.backfill_embeddings(int),
    sponsorship.fn_mark_objectives_embedding(),
    sponsorship.fn_mark_description_embedding(),
    sponsorship.queue_due_payouts(integer),
    sponsorship.fn_reverse_payouts_on_refund(),
    sponsorship.refresh_order_payout_status(uuid),
    sponsorship.process_payout_queue(integer),
    sponsorship.reconcile_payouts(interval),
    sponsorship.payout_lease(),
    sponsorship.fn_activation_lifecycle(),
    sponsorship.evaluate_completed_sponsorships(integer),
    sponsorship.roi_assess(jsonb),
    sponsorship.fn_audit_log_is_append_only(),
    sponsorship.fn_audit_payout_configuration(),
    sponsorship.fn_audit_payout_configuration_truncate(),
    sponsorship.fn_audit_match_status(),
    sponsorship.observe_platform_settings(),
    sponsorship.log_refresh_failure(text, float8, boolean, text, text),
    sponsorship.create_month_partition(regclass, date),
    sponsorship.create_next_month_partitions(integer),
    sponsorship.apply_partition_retention(integer, text),
    sponsorship.refresh_package_cards(),
    sponsorship.refresh_semantic_marketplace(),
    sponsorship.record_queue_health(bigint, interval, bigint),
    sponsorship.run_cleanup(integer),
    sponsorship.prune_cron_history(interval, integer),
    sponsorship.require_pg_cron(),
    sponsorship.schedule_jobs(),
    sponsorship.unschedule_jobs(),
    sponsorship.require_job_owner(),
    sponsorship.cron_job_status(),
    sponsorship.health()
  FROM anon, authenticated;

-- Fees are an organization's commercial terms: signed-in users (who pay them) may compute
-- them, anonymous visitors may not. Queueing a payout checks its caller itself.
REVOKE EXECUTE ON FUNCTION
    sponsorship.calculate_platform_fee(bigint, uuid),
    sponsorship.calculate_platform_fee(bigint, uuid, text),
    sponsorship.queue_sponsorship_payout(uuid, integer),
    sponsorship.evaluate_sponsorship_roi(uuid)
  FROM anon;
