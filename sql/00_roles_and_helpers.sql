-- Roles, the acting user, membership checks and validators used by CHECKs and policies.
--
-- Supabase-compatible access: PostgREST switches to `anon`, `authenticated` or
-- `service_role` and puts the JWT claims in the GUC `request.jwt.claims`; the acting user is
-- its `sub` claim (what Supabase's auth.uid() reads). The `auth` schema is not required.

-- The schema is the extension's alone. Postgres creates it for CREATE EXTENSION when it is
-- missing (owned by the installing role), and uses one that already exists: a schema someone
-- else owns, or one holding someone's objects, would let them replace what the extension's
-- SECURITY DEFINER functions call. Refuse both.
DO $adopt$
DECLARE
    v_owner  name;
    v_what   text;
BEGIN
    SELECT r.rolname INTO v_owner
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
     WHERE n.nspname = 'sponsorship';
    IF v_owner IS DISTINCT FROM current_user THEN
        RAISE EXCEPTION 'schema sponsorship already exists and belongs to %, not to %', v_owner, current_user
              USING ERRCODE = 'insufficient_privilege',
                    HINT = 'The extension creates its schema itself: drop or rename that schema first.';
    END IF;
    SELECT string_agg(x.what, ', ') INTO v_what
      FROM (SELECT 'relation ' || c.relname AS what FROM pg_catalog.pg_class c
             WHERE c.relnamespace = 'sponsorship'::regnamespace
            UNION ALL
            SELECT 'function ' || p.proname FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'sponsorship'::regnamespace
            UNION ALL
            SELECT 'type ' || t.typname FROM pg_catalog.pg_type t WHERE t.typnamespace = 'sponsorship'::regnamespace
            UNION ALL
            SELECT 'operator ' || o.oprname FROM pg_catalog.pg_operator o WHERE o.oprnamespace = 'sponsorship'::regnamespace
           ) x;
    IF v_what IS NOT NULL THEN
        RAISE EXCEPTION 'schema sponsorship already holds objects the extension did not make: %', left(v_what, 300)
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    HINT = 'The extension needs its schema to itself: move or drop them first.';
    END IF;
END
$adopt$;

-- Roles are cluster-wide: another database may be creating them at the same moment, so a
-- role that appears between the check and the CREATE counts as already there.
DO $roles$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES ('anon', 'NOLOGIN NOINHERIT'),
                                   ('authenticated', 'NOLOGIN NOINHERIT'),
                                   ('service_role', 'NOLOGIN NOINHERIT BYPASSRLS')) v(name, options)
    LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.name);
        BEGIN
            EXECUTE format('CREATE ROLE %I %s', r.name, r.options);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created concurrently by another session: the role exists, as wanted
        END;
    END LOOP;
END
$roles$;

COMMENT ON SCHEMA sponsorship IS
    'Sponsorship marketplace: brands (sponsors) and event organizers, matching, search, fees and payouts.';

-- The acting user: the `sub` claim of request.jwt.claims (PostgREST >= 9), or the older
-- per-claim GUC request.jwt.claim.sub. NULL when absent or not a UUID (no access, no error).
CREATE FUNCTION sponsorship.current_user_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
    SELECT CASE
             WHEN s ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN s::uuid
           END
      FROM (SELECT COALESCE(
                     NULLIF(pg_catalog.current_setting('request.jwt.claim.sub', true), ''),
                     NULLIF(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
                   ) AS s) claims
$fn$;
COMMENT ON FUNCTION sponsorship.current_user_id() IS
    'The acting user: the sub claim of request.jwt.claims (as set by PostgREST/Supabase); NULL when absent or not a UUID.';

-- Member roles, in increasing order of power.
CREATE FUNCTION sponsorship.role_rank(p_role text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
    SELECT pg_catalog.array_position(ARRAY['viewer','editor','admin','owner']::text[], p_role)
$fn$;
COMMENT ON FUNCTION sponsorship.role_rank(text) IS
    'Rank of a member role: viewer 1, editor 2, admin 3, owner 4; NULL for anything else.';

-- True when every value of a jsonb object is a number in [0,1] (a share map such as
-- {"Austin": 0.4, "Dallas": 0.2} or {"18-24": 0.3}) and the shares sum to at most 1
-- (with a little room for rounding).
CREATE FUNCTION sponsorship.is_share_map(p jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
    SELECT CASE WHEN pg_catalog.jsonb_typeof(p) IS DISTINCT FROM 'object' THEN false ELSE
           NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(p) kv
                        WHERE CASE WHEN pg_catalog.jsonb_typeof(kv.value) = 'number'
                                   THEN kv.value::numeric NOT BETWEEN 0 AND 1
                                   ELSE true END)
       AND COALESCE((SELECT sum(CASE WHEN pg_catalog.jsonb_typeof(kv.value) = 'number'
                                     THEN kv.value::numeric END)
                       FROM pg_catalog.jsonb_each(p) kv), 0) <= 1.0001
           END
$fn$;
COMMENT ON FUNCTION sponsorship.is_share_map(jsonb) IS
    'True when the value is a JSON object of shares in [0,1] summing to at most 1.';

CREATE FUNCTION sponsorship.is_currency_code(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$ SELECT p ~ '^[A-Z]{3}$' $fn$;
COMMENT ON FUNCTION sponsorship.is_currency_code(text) IS
    'True for a three-letter upper-case ISO 4217 code (the fee calculator checks it is a known one).';
