-- Row level security and privileges (SPEC §8).
--
--  * Public marketplace data (organizations, sponsor listings and profiles, public events,
--    their audience insights and public active packages, scoring weights) is readable by
--    anon and authenticated.
--  * Sponsors and organizations edit only their own rows, by membership role
--    (viewer < editor < admin < owner).
--  * Payout settings and the payout ledger: organization admins and owners only.
--  * Queues and logs: service_role only.
-- service_role gets explicit allow-all policies as well, so it works even where it lacks
-- BYPASSRLS.

DO $rls$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'sponsorship'::regnamespace AND c.relkind IN ('r','p')
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                            WHERE p.polrelid = c.oid AND p.polname = 'service_role_all')
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY service_role_all ON %s TO service_role USING (true) WITH CHECK (true)', t);
    END LOOP;
END
$rls$;

-- organizations --------------------------------------------------------------------
CREATE POLICY organizations_read ON sponsorship.organizations FOR SELECT TO anon, authenticated
    USING (true);
CREATE POLICY organizations_create ON sponsorship.organizations FOR INSERT TO authenticated
    WITH CHECK (sponsorship.current_user_id() IS NOT NULL);
CREATE POLICY organizations_update ON sponsorship.organizations FOR UPDATE TO authenticated
    USING (sponsorship.has_org_role(id, 'admin')) WITH CHECK (sponsorship.has_org_role(id, 'admin'));
CREATE POLICY organizations_delete ON sponsorship.organizations FOR DELETE TO authenticated
    USING (sponsorship.has_org_role(id, 'owner'));

-- org_members: members see their organization's members; admins manage roles up to their own.
CREATE POLICY org_members_read ON sponsorship.org_members FOR SELECT TO authenticated
    USING (user_id = sponsorship.current_user_id() OR sponsorship.has_org_role(org_id, 'viewer'));
CREATE POLICY org_members_add ON sponsorship.org_members FOR INSERT TO authenticated
    WITH CHECK (sponsorship.has_org_role(org_id, 'admin')
                AND sponsorship.role_rank(role) <= sponsorship.role_rank(sponsorship.org_role(org_id)));
CREATE POLICY org_members_change ON sponsorship.org_members FOR UPDATE TO authenticated
    USING (sponsorship.has_org_role(org_id, 'admin')
           AND sponsorship.role_rank(role) <= sponsorship.role_rank(sponsorship.org_role(org_id)))
    WITH CHECK (sponsorship.role_rank(role) <= sponsorship.role_rank(sponsorship.org_role(org_id)));
CREATE POLICY org_members_remove ON sponsorship.org_members FOR DELETE TO authenticated
    USING (user_id = sponsorship.current_user_id()
           OR (sponsorship.has_org_role(org_id, 'admin')
               AND sponsorship.role_rank(role) <= sponsorship.role_rank(sponsorship.org_role(org_id))));

-- sponsors and their members ---------------------------------------------------------
CREATE POLICY sponsors_read ON sponsorship.sponsors FOR SELECT TO anon, authenticated
    USING (true);
CREATE POLICY sponsors_create ON sponsorship.sponsors FOR INSERT TO authenticated
    WITH CHECK (sponsorship.current_user_id() IS NOT NULL);
CREATE POLICY sponsors_update ON sponsorship.sponsors FOR UPDATE TO authenticated
    USING (sponsorship.has_sponsor_role(id, 'editor')) WITH CHECK (sponsorship.has_sponsor_role(id, 'editor'));
CREATE POLICY sponsors_delete ON sponsorship.sponsors FOR DELETE TO authenticated
    USING (sponsorship.has_sponsor_role(id, 'owner'));

CREATE POLICY sponsor_members_read ON sponsorship.sponsor_members FOR SELECT TO authenticated
    USING (user_id = sponsorship.current_user_id() OR sponsorship.has_sponsor_role(sponsor_id, 'viewer'));
CREATE POLICY sponsor_members_add ON sponsorship.sponsor_members FOR INSERT TO authenticated
    WITH CHECK (sponsorship.has_sponsor_role(sponsor_id, 'admin')
                AND sponsorship.role_rank(role) <= sponsorship.role_rank(sponsorship.sponsor_role(sponsor_id)));
CREATE POLICY sponsor_members_change ON sponsorship.sponsor_members FOR UPDATE TO authenticated
    USING (sponsorship.has_sponsor_role(sponsor_id, 'admin')
           AND sponsorship.role_rank(role) <= sponsorship.role_rank(sponsorship.sponsor_role(sponsor_id)))
    WITH CHECK (sponsorship.role_rank(role) <= sponsorship.role_rank(sponsorship.sponsor_role(sponsor_id)));
CREATE POLICY sponsor_members_remove ON sponsorship.sponsor_members FOR DELETE TO authenticated
    USING (user_id = sponsorship.current_user_id()
           OR (sponsorship.has_sponsor_role(sponsor_id, 'admin')
               AND sponsorship.role_rank(role) <= sponsorship.role_rank(sponsorship.sponsor_role(sponsor_id))));

CREATE POLICY sponsor_profiles_read ON sponsorship.sponsor_profiles FOR SELECT TO anon, authenticated
    USING (true);
CREATE POLICY sponsor_profiles_create ON sponsorship.sponsor_profiles FOR INSERT TO authenticated
    WITH CHECK (sponsorship.has_sponsor_role(sponsor_id, 'editor'));
CREATE POLICY sponsor_profiles_update ON sponsorship.sponsor_profiles FOR UPDATE TO authenticated
    USING (sponsorship.has_sponsor_role(sponsor_id, 'editor'))
    WITH CHECK (sponsorship.has_sponsor_role(sponsor_id, 'editor'));
CREATE POLICY sponsor_profiles_delete ON sponsorship.sponsor_profiles FOR DELETE TO authenticated
    USING (sponsorship.has_sponsor_role(sponsor_id, 'admin'));

-- events and what hangs off them ---------------------------------------------------
CREATE POLICY events_read ON sponsorship.events FOR SELECT TO anon, authenticated
    USING (visibility = 'public' OR sponsorship.has_org_role(org_id, 'viewer'));
CREATE POLICY events_create ON sponsorship.events FOR INSERT TO authenticated
    WITH CHECK (sponsorship.has_org_role(org_id, 'editor'));
CREATE POLICY events_update ON sponsorship.events FOR UPDATE TO authenticated
    USING (sponsorship.has_org_role(org_id, 'editor')) WITH CHECK (sponsorship.has_org_role(org_id, 'editor'));
CREATE POLICY events_delete ON sponsorship.events FOR DELETE TO authenticated
    USING (sponsorship.has_org_role(org_id, 'admin'));

CREATE POLICY insights_read ON sponsorship.event_audience_insights FOR SELECT TO anon, authenticated
    USING (EXISTS (SELECT 1 FROM sponsorship.events e WHERE e.id = event_id));
CREATE POLICY insights_write ON sponsorship.event_audience_insights FOR ALL TO authenticated
    USING (sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'editor'))
    WITH CHECK (sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'editor'));

CREATE POLICY snapshots_read ON sponsorship.event_stat_snapshots FOR SELECT TO authenticated
    USING (sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'viewer'));
CREATE POLICY snapshots_write ON sponsorship.event_stat_snapshots FOR INSERT TO authenticated
    WITH CHECK (sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'editor'));

CREATE POLICY impressions_read ON sponsorship.event_impressions FOR SELECT TO authenticated
    USING (sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'viewer'));
CREATE POLICY tickets_read ON sponsorship.ticket_analytics FOR SELECT TO authenticated
    USING (sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'viewer'));

CREATE POLICY packages_read ON sponsorship.sponsorship_packages FOR SELECT TO anon, authenticated
    USING ((is_active AND visibility = 'public' AND EXISTS (SELECT 1 FROM sponsorship.events e WHERE e.id = event_id))
           OR sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'viewer'));
CREATE POLICY packages_write ON sponsorship.sponsorship_packages FOR ALL TO authenticated
    USING (sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'editor'))
    WITH CHECK (sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'editor'));

-- deals: visible to both parties ---------------------------------------------------
CREATE POLICY orders_read ON sponsorship.sponsorship_orders FOR SELECT TO authenticated
    USING (sponsorship.has_sponsor_role(sponsor_id, 'viewer')
           OR sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'viewer'));
CREATE POLICY orders_place ON sponsorship.sponsorship_orders FOR INSERT TO authenticated
    WITH CHECK (sponsorship.has_sponsor_role(sponsor_id, 'editor') AND status = 'pending');
CREATE POLICY orders_update ON sponsorship.sponsorship_orders FOR UPDATE TO authenticated
    USING (sponsorship.has_sponsor_role(sponsor_id, 'editor')
           OR sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'editor'))
    WITH CHECK (sponsorship.has_sponsor_role(sponsor_id, 'editor')
                OR sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'editor'));

CREATE POLICY activations_read ON sponsorship.event_sponsorships FOR SELECT TO authenticated
    USING (sponsorship.has_sponsor_role(sponsor_id, 'viewer')
           OR sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'viewer'));
CREATE POLICY activations_create ON sponsorship.event_sponsorships FOR INSERT TO authenticated
    WITH CHECK (sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'editor'));
CREATE POLICY activations_update ON sponsorship.event_sponsorships FOR UPDATE TO authenticated
    USING (sponsorship.has_sponsor_role(sponsor_id, 'editor')
           OR sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'editor'))
    WITH CHECK (sponsorship.has_sponsor_role(sponsor_id, 'editor')
                OR sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'editor'));

CREATE POLICY matches_read ON sponsorship.sponsorship_matches FOR SELECT TO authenticated
    USING (sponsorship.has_sponsor_role(sponsor_id, 'viewer')
           OR sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'viewer'));
CREATE POLICY matches_review ON sponsorship.sponsorship_matches FOR UPDATE TO authenticated
    USING (sponsorship.has_sponsor_role(sponsor_id, 'editor')
           OR sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'editor'))
    WITH CHECK (sponsorship.has_sponsor_role(sponsor_id, 'editor')
                OR sponsorship.has_org_role(sponsorship.event_org_id(event_id), 'editor'));

CREATE POLICY weights_read ON sponsorship.scoring_weights FOR SELECT TO anon, authenticated
    USING (true);

-- money settings and the ledger: organization admins and owners only ----------------
CREATE POLICY payout_config_admins ON sponsorship.payout_configurations FOR ALL TO authenticated
    USING (sponsorship.has_org_role(org_id, 'admin')) WITH CHECK (sponsorship.has_org_role(org_id, 'admin'));
CREATE POLICY payouts_read_admins ON sponsorship.sponsorship_payouts FOR SELECT TO authenticated
    USING (sponsorship.has_org_role(org_id, 'admin'));

-- payout_queue, fit_recalc_queue, mv_refresh_log and the partitions: service_role only
-- (RLS enabled above, no other policy).

---------------------------------------------------------------------------------------
-- Privileges
---------------------------------------------------------------------------------------
REVOKE ALL ON ALL TABLES IN SCHEMA sponsorship FROM PUBLIC;
GRANT USAGE ON SCHEMA sponsorship TO anon, authenticated, service_role;

GRANT ALL ON ALL TABLES IN SCHEMA sponsorship TO service_role;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA sponsorship TO service_role;

GRANT SELECT ON sponsorship.organizations, sponsorship.sponsors, sponsorship.sponsor_profiles,
                sponsorship.events, sponsorship.event_audience_insights, sponsorship.sponsorship_packages,
                sponsorship.scoring_weights, sponsorship.event_quality_scores,
                sponsorship.v_event_marketplace, sponsorship.v_sponsorship_package_cards,
                sponsorship.v_sponsor_marketplace, sponsorship.mv_city_countries, sponsorship.mv_tier_price_medians
   TO anon, authenticated;

GRANT SELECT ON sponsorship.org_members, sponsorship.sponsor_members, sponsorship.event_stat_snapshots,
                sponsorship.event_impressions, sponsorship.ticket_analytics, sponsorship.sponsorship_orders,
                sponsorship.event_sponsorships, sponsorship.sponsorship_matches,
                sponsorship.payout_configurations, sponsorship.sponsorship_payouts,
                sponsorship.v_event_performance_summary
   TO authenticated;

GRANT INSERT, UPDATE, DELETE ON sponsorship.org_members, sponsorship.sponsor_members, sponsorship.sponsor_profiles,
                                sponsorship.events, sponsorship.event_audience_insights,
                                sponsorship.sponsorship_packages
   TO authenticated;
-- Payout settings: org admins set where and when they are paid; the fee the platform takes
-- (rate, floor, cap) is set by the platform (service_role) only.
GRANT INSERT (org_id, stripe_connect_account_id, minimum_payout_cents, payout_schedule, auto_payout_enabled),
      UPDATE (stripe_connect_account_id, minimum_payout_cents, payout_schedule, auto_payout_enabled, updated_at),
      DELETE ON sponsorship.payout_configurations TO authenticated;
GRANT INSERT (id, name), UPDATE (name), DELETE ON sponsorship.organizations TO authenticated;
GRANT INSERT (id, name, industry, company_size, website_url, logo_url, contact_email, brand_values),
      UPDATE (name, industry, company_size, website_url, logo_url, contact_email, brand_values),
      DELETE ON sponsorship.sponsors TO authenticated;
GRANT INSERT (event_id, metric_key, metric_value, captured_at) ON sponsorship.event_stat_snapshots TO authenticated;
-- Orders: parties set the deal and its lifecycle; charges, fees and payout progress are
-- written by the platform (service_role) only.
GRANT INSERT (id, package_id, sponsor_id, event_id, amount_cents, currency, milestone),
      UPDATE (status, proof_assets, review_score)
   ON sponsorship.sponsorship_orders TO authenticated;
GRANT INSERT (id, order_id, event_id, sponsor_id, status, deliverables),
      UPDATE (status, deliverables, started_at, completed_at)
   ON sponsorship.event_sponsorships TO authenticated;
GRANT UPDATE (status) ON sponsorship.sponsorship_matches TO authenticated;

-- The materialized views have no RLS: only service_role reads the per-event ones directly;
-- API roles read quality scores through event_quality_scores. The market reference views
-- (mv_city_countries, mv_tier_price_medians) hold aggregates only and are readable by all.
REVOKE ALL ON sponsorship.mv_event_quality_scores, sponsorship.mv_sponsor_event_fit_scores FROM anon, authenticated;
