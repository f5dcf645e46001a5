-- Membership checks used by policies and views. They read the member tables with the
-- owner's rights (SECURITY DEFINER) so that policies do not recurse into each other's RLS;
-- each answers only about the acting user (current_user_id()). EXECUTE: see 40_security.sql.

CREATE FUNCTION sponsorship.org_role(p_org_id uuid) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
AS $fn$
    SELECT m.role FROM sponsorship.org_members m
     WHERE m.org_id = p_org_id AND m.user_id = sponsorship.current_user_id()
$fn$;
COMMENT ON FUNCTION sponsorship.org_role(uuid) IS 'The acting user''s role in an organization, or NULL.';

CREATE FUNCTION sponsorship.sponsor_role(p_sponsor_id uuid) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
AS $fn$
    SELECT m.role FROM sponsorship.sponsor_members m
     WHERE m.sponsor_id = p_sponsor_id AND m.user_id = sponsorship.current_user_id()
$fn$;
COMMENT ON FUNCTION sponsorship.sponsor_role(uuid) IS 'The acting user''s role for a sponsor, or NULL.';

CREATE FUNCTION sponsorship.has_org_role(p_org_id uuid, p_min_role text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
    SELECT COALESCE(sponsorship.role_rank(sponsorship.org_role(p_org_id)) >= sponsorship.role_rank(p_min_role), false)
$fn$;
COMMENT ON FUNCTION sponsorship.has_org_role(uuid, text) IS
    'True when the acting user holds at least the given role (viewer < editor < admin < owner) in the organization.';

CREATE FUNCTION sponsorship.has_sponsor_role(p_sponsor_id uuid, p_min_role text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
    SELECT COALESCE(sponsorship.role_rank(sponsorship.sponsor_role(p_sponsor_id)) >= sponsorship.role_rank(p_min_role), false)
$fn$;
COMMENT ON FUNCTION sponsorship.has_sponsor_role(uuid, text) IS
    'True when the acting user holds at least the given role (viewer < editor < admin < owner) for the sponsor.';

-- The organization of an event, whether or not the caller may see the event (policies on
-- child tables decide by membership, not by event visibility).
CREATE FUNCTION sponsorship.event_org_id(p_event_id uuid) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
AS $fn$ SELECT e.org_id FROM sponsorship.events e WHERE e.id = p_event_id $fn$;
COMMENT ON FUNCTION sponsorship.event_org_id(uuid) IS 'The organization that owns an event.';

CREATE FUNCTION sponsorship.is_service_role() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$ SELECT pg_catalog.pg_has_role('service_role', 'USAGE') $fn$;
COMMENT ON FUNCTION sponsorship.is_service_role() IS
    'True when the current role is (or acts as) service_role, or is a superuser.';

CREATE FUNCTION sponsorship.can_read_event(p_visibility text, p_org_id uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
    SELECT p_visibility = 'public'
        OR sponsorship.has_org_role(p_org_id, 'viewer')
        OR sponsorship.is_service_role()
$fn$;
COMMENT ON FUNCTION sponsorship.can_read_event(text, uuid) IS
    'The read rule for events: public ones for everyone, the rest for the organization''s members and the service role.';

-- Whoever creates an organization or a sponsor becomes its owner.
CREATE FUNCTION sponsorship.add_creator_as_owner() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    v_user uuid := sponsorship.current_user_id();
BEGIN
    IF v_user IS NULL THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'organizations' THEN
        INSERT INTO sponsorship.org_members (org_id, user_id, role) VALUES (NEW.id, v_user, 'owner')
        ON CONFLICT (org_id, user_id) DO NOTHING;
    ELSIF TG_TABLE_NAME = 'sponsors' THEN
        INSERT INTO sponsorship.sponsor_members (sponsor_id, user_id, role) VALUES (NEW.id, v_user, 'owner')
        ON CONFLICT (sponsor_id, user_id) DO NOTHING;
    END IF;
    RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION sponsorship.add_creator_as_owner() IS
    'Trigger: the acting user who creates an organization or sponsor becomes its owner.';

CREATE TRIGGER organizations_creator_is_owner AFTER INSERT ON sponsorship.organizations
    FOR EACH ROW EXECUTE FUNCTION sponsorship.add_creator_as_owner();
CREATE TRIGGER sponsors_creator_is_owner AFTER INSERT ON sponsorship.sponsors
    FOR EACH ROW EXECUTE FUNCTION sponsorship.add_creator_as_owner();

-- Keeps updated_at honest on every table that has one.
CREATE FUNCTION sponsorship.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION sponsorship.touch_updated_at() IS 'Trigger: sets updated_at to now() on UPDATE.';

DO $touch$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sponsor_profiles','events','event_audience_insights','sponsorship_packages',
                             'sponsorship_orders','event_sponsorships','payout_configurations',
                             'sponsorship_matches']
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON sponsorship.%I '
                       'FOR EACH ROW EXECUTE FUNCTION sponsorship.touch_updated_at()', t || '_touch', t);
    END LOOP;
END
$touch$;
