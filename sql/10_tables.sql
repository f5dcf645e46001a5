-- The data model (SPEC §2). Money is bigint minor units plus an ISO 4217 currency.
-- Old names are kept where a caller could depend on them.

---------------------------------------------------------------------------------------
-- Parties and people
---------------------------------------------------------------------------------------

CREATE TABLE sponsorship.organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sponsorship.organizations IS 'Event organizers: they list events and packages and are paid out.';

CREATE TABLE sponsorship.org_members (
    org_id      uuid NOT NULL REFERENCES sponsorship.organizations(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    role        text NOT NULL DEFAULT 'viewer' CHECK (role IN ('viewer','editor','admin','owner')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user_idx ON sponsorship.org_members (user_id);
COMMENT ON TABLE sponsorship.org_members IS 'Who acts for an organization, and with which role (viewer < editor < admin < owner).';

CREATE TABLE sponsorship.sponsors (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    industry       text CHECK (length(industry) <= 100),
    company_size   text CHECK (company_size IN ('startup','small','medium','large','enterprise')),
    website_url    text CHECK (website_url ~* '^https?://[^\s]+$'),
    logo_url       text CHECK (logo_url ~* '^https?://[^\s]+$'),
    contact_email  text CHECK (contact_email ~* '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    brand_values   jsonb NOT NULL DEFAULT '[]'::jsonb
                   CHECK (jsonb_typeof(brand_values) IN ('array','object')),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sponsors_industry_idx ON sponsorship.sponsors (lower(industry));
COMMENT ON TABLE sponsorship.sponsors IS 'Brands that buy sponsorships; their public marketplace listing.';

CREATE TABLE sponsorship.sponsor_members (
    sponsor_id  uuid NOT NULL REFERENCES sponsorship.sponsors(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    role        text NOT NULL DEFAULT 'viewer' CHECK (role IN ('viewer','editor','admin','owner')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sponsor_id, user_id)
);
CREATE INDEX sponsor_members_user_idx ON sponsorship.sponsor_members (user_id);
COMMENT ON TABLE sponsorship.sponsor_members IS 'Who acts for a sponsor, and with which role (viewer < editor < admin < owner).';

CREATE TABLE sponsorship.sponsor_profiles (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sponsor_id              uuid NOT NULL UNIQUE REFERENCES sponsorship.sponsors(id) ON DELETE CASCADE,
    industry                text CHECK (length(industry) <= 100),
    annual_budget_cents     bigint CHECK (annual_budget_cents >= 0),
    currency                text NOT NULL DEFAULT 'USD' CHECK (sponsorship.is_currency_code(currency)),
    brand_objectives        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(brand_objectives) = 'object'),
    target_audience         jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(target_audience) = 'object'),
    activation_preferences  jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(activation_preferences) = 'object'),
    preferred_categories    text[] NOT NULL DEFAULT '{}',
    regions                 text[] NOT NULL DEFAULT '{}',
    objectives_embedding    vector(384),
    objectives_embedding_stale boolean NOT NULL DEFAULT false,
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sponsor_profiles_audience_ages_are_shares CHECK (
        NOT (target_audience ? 'age_segments')
        OR jsonb_typeof(target_audience -> 'age_segments') = 'array'
        OR sponsorship.is_share_map(target_audience -> 'age_segments'))
);
COMMENT ON TABLE sponsorship.sponsor_profiles IS
    'What a sponsor wants: budget, objectives (brand_objectives.description is free text), target audience '
    '(age_segments, regions, interests), activation preferences, categories and regions; one per sponsor.';
COMMENT ON COLUMN sponsorship.sponsor_profiles.objectives_embedding IS
    'all-MiniLM-L6-v2 embedding (384 dimensions) of the objectives and audience text.';
COMMENT ON COLUMN sponsorship.sponsor_profiles.objectives_embedding_stale IS
    'True while objectives_embedding does not describe the current objectives text (backfill_embeddings() recomputes it).';
COMMENT ON COLUMN sponsorship.sponsor_profiles.regions IS
    'Cities, countries or ''global''; compared case-insensitively with event city/country.';

---------------------------------------------------------------------------------------
-- Events and their audience
---------------------------------------------------------------------------------------

CREATE TABLE sponsorship.events (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                 uuid NOT NULL REFERENCES sponsorship.organizations(id) ON DELETE CASCADE,
    title                  text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 300),
    description            text CHECK (length(description) <= 20000),
    category               text CHECK (length(category) <= 100),
    city                   text CHECK (length(city) <= 200),
    country                text CHECK (length(country) <= 100),
    lat                    double precision CHECK (lat BETWEEN -90 AND 90),
    lng                    double precision CHECK (lng BETWEEN -180 AND 180),
    start_at               timestamptz NOT NULL,
    end_at                 timestamptz,
    visibility             text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public','unlisted','private')),
    capacity               integer CHECK (capacity > 0),
    description_embedding  vector(384),
    description_embedding_stale boolean NOT NULL DEFAULT false,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_end_after_start CHECK (end_at IS NULL OR end_at >= start_at),
    CONSTRAINT events_lat_lng_together CHECK ((lat IS NULL) = (lng IS NULL))
);
CREATE INDEX events_org_idx ON sponsorship.events (org_id);
CREATE INDEX events_start_idx ON sponsorship.events (start_at);
CREATE INDEX events_category_idx ON sponsorship.events (lower(category));
CREATE INDEX events_city_idx ON sponsorship.events (lower(city));
CREATE INDEX events_public_upcoming_idx ON sponsorship.events (start_at) WHERE visibility = 'public';
COMMENT ON TABLE sponsorship.events IS 'The marketplace listing of an event.';
COMMENT ON COLUMN sponsorship.events.visibility IS
    'public: listed for everyone; unlisted and private: visible to the organization''s members only.';
COMMENT ON COLUMN sponsorship.events.description_embedding IS
    'all-MiniLM-L6-v2 embedding (384 dimensions) of title, category and description.';
COMMENT ON COLUMN sponsorship.events.description_embedding_stale IS
    'True while description_embedding does not describe the current title, category and description (backfill_embeddings() recomputes it).';

CREATE TABLE sponsorship.event_audience_insights (
    event_id                uuid PRIMARY KEY REFERENCES sponsorship.events(id) ON DELETE CASCADE,
    attendee_count          integer NOT NULL DEFAULT 0 CHECK (attendee_count >= 0),
    avg_dwell_time_ms       bigint CHECK (avg_dwell_time_ms >= 0),
    geo_distribution        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (sponsorship.is_share_map(geo_distribution)),
    age_segments            jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (sponsorship.is_share_map(age_segments)),
    engagement_score        numeric(6,3) CHECK (engagement_score BETWEEN 0 AND 100),
    ticket_conversion_rate  numeric(7,6) CHECK (ticket_conversion_rate BETWEEN 0 AND 1),
    social_mentions         integer NOT NULL DEFAULT 0 CHECK (social_mentions >= 0),
    sentiment_score         numeric(4,3) CHECK (sentiment_score BETWEEN -1 AND 1),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sponsorship.event_audience_insights IS
    'The measured audience of an event: size, dwell time, where attendees come from (place -> share), '
    'age segments (segment -> share), engagement 0..100, ticket conversion 0..1, social mentions, sentiment -1..1.';

CREATE TABLE sponsorship.event_stat_snapshots (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid NOT NULL REFERENCES sponsorship.events(id) ON DELETE CASCADE,
    metric_key    text NOT NULL CHECK (metric_key ~ '^[a-z][a-z0-9_.]{0,99}$'),
    metric_value  numeric NOT NULL,
    captured_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_stat_snapshots_lookup_idx
    ON sponsorship.event_stat_snapshots (event_id, metric_key, captured_at DESC);
COMMENT ON TABLE sponsorship.event_stat_snapshots IS 'Point-in-time values of an event metric (history of insights).';

-- Raw facts, range-partitioned by month on created_at (old names event_impressions_p,
-- ticket_analytics_p). Identity columns are not allowed on partitioned tables in
-- Postgres 15, so ids come from a sequence.
CREATE TABLE sponsorship.event_impressions (
    id          bigserial NOT NULL,
    event_id    uuid NOT NULL REFERENCES sponsorship.events(id) ON DELETE CASCADE,
    sponsor_id  uuid REFERENCES sponsorship.sponsors(id) ON DELETE SET NULL,
    source      text NOT NULL DEFAULT 'web' CHECK (source IN ('web','app','email','social','onsite','partner')),
    kind        text NOT NULL DEFAULT 'view' CHECK (kind IN ('view','click','engagement')),
    dwell_ms    integer CHECK (dwell_ms >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- 0.2.0 (after created_at, where ALTER TABLE ADD COLUMN puts them on an upgraded database)
    viewer_key  text CHECK (length(viewer_key) BETWEEN 1 AND 128),
    completed   boolean,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX event_impressions_event_idx ON sponsorship.event_impressions (event_id, created_at);
-- A sponsor's placements at one event over a window (evaluate_sponsorship_roi()).
CREATE INDEX event_impressions_sponsor_idx ON sponsorship.event_impressions (sponsor_id, event_id, created_at)
    WHERE sponsor_id IS NOT NULL;
COMMENT ON TABLE sponsorship.event_impressions IS
    'Raw impressions of an event listing or of a sponsor placement (sponsor_id set); monthly partitions.';
COMMENT ON COLUMN sponsorship.event_impressions.viewer_key IS
    'A pseudonymous, stable key of the person who saw it (a hashed visitor or attendee id, never an e-mail '
    'address); counts unique reach. NULL when unknown.';
COMMENT ON COLUMN sponsorship.event_impressions.completed IS
    'True when the placement was seen through (a video played to its end, a session attended to its close); '
    'NULL when the placement has no end to reach or it was not measured.';

CREATE TABLE sponsorship.ticket_analytics (
    id             bigserial NOT NULL,
    event_id       uuid NOT NULL REFERENCES sponsorship.events(id) ON DELETE CASCADE,
    sponsor_id     uuid REFERENCES sponsorship.sponsors(id) ON DELETE SET NULL,
    channel        text NOT NULL DEFAULT 'direct' CHECK (channel IN ('direct','sponsor','social','email','partner','box_office')),
    tickets        integer NOT NULL DEFAULT 0 CHECK (tickets >= 0),
    revenue_cents  bigint NOT NULL DEFAULT 0 CHECK (revenue_cents >= 0),
    currency       text NOT NULL DEFAULT 'USD' CHECK (sponsorship.is_currency_code(currency)),
    created_at     timestamptz NOT NULL DEFAULT now(),
    views          integer NOT NULL DEFAULT 0 CHECK (views >= 0),  -- 0.2.0
    PRIMARY KEY (id, created_at),
    CONSTRAINT ticket_analytics_records_something CHECK (views > 0 OR tickets > 0),
    CONSTRAINT ticket_analytics_revenue_needs_tickets CHECK (tickets > 0 OR revenue_cents = 0)
) PARTITION BY RANGE (created_at);
CREATE INDEX ticket_analytics_event_idx ON sponsorship.ticket_analytics (event_id, created_at);
CREATE INDEX ticket_analytics_sponsor_idx ON sponsorship.ticket_analytics (sponsor_id, event_id, created_at)
    WHERE sponsor_id IS NOT NULL;
COMMENT ON TABLE sponsorship.ticket_analytics IS
    'Raw ticket-page views and ticket sales by channel (sponsor_id set when a sponsor referral drove them); '
    'monthly partitions.';
COMMENT ON COLUMN sponsorship.ticket_analytics.views IS 'Views of the ticket page this row records (0 for a sale alone).';
COMMENT ON COLUMN sponsorship.ticket_analytics.tickets IS 'Tickets sold (0 for views alone).';

---------------------------------------------------------------------------------------
-- Deals and money
---------------------------------------------------------------------------------------

CREATE TABLE sponsorship.sponsorship_packages (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id        uuid NOT NULL REFERENCES sponsorship.events(id) ON DELETE CASCADE,
    tier            text NOT NULL DEFAULT 'custom'
                    CHECK (tier IN ('title','platinum','gold','silver','bronze','community','custom')),
    title           text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    description     text CHECK (length(description) <= 10000),
    price_cents     bigint NOT NULL CHECK (price_cents >= 0),
    currency        text NOT NULL DEFAULT 'USD' CHECK (sponsorship.is_currency_code(currency)),
    inventory       integer NOT NULL DEFAULT 1 CHECK (inventory >= 0),
    sold            integer NOT NULL DEFAULT 0 CHECK (sold >= 0),
    benefits        jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(benefits) = 'array'),
    package_type    text NOT NULL DEFAULT 'hybrid' CHECK (package_type IN ('digital','onsite','hybrid')),
    expected_reach  integer CHECK (expected_reach >= 0),
    is_active       boolean NOT NULL DEFAULT true,
    visibility      text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public','unlisted','private')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sponsorship_packages_not_oversold CHECK (sold <= inventory),
    CONSTRAINT sponsorship_packages_id_event_key UNIQUE (id, event_id)
);
CREATE INDEX sponsorship_packages_event_idx ON sponsorship.sponsorship_packages (event_id) WHERE is_active;
COMMENT ON TABLE sponsorship.sponsorship_packages IS
    'What an event sells to sponsors: tier, price (minor units), inventory and what was sold, benefits, expected reach.';

CREATE TABLE sponsorship.sponsorship_orders (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    package_id                uuid NOT NULL,
    sponsor_id                uuid NOT NULL REFERENCES sponsorship.sponsors(id) ON DELETE RESTRICT,
    event_id                  uuid NOT NULL REFERENCES sponsorship.events(id) ON DELETE RESTRICT,
    amount_cents              bigint NOT NULL CHECK (amount_cents > 0),
    currency                  text NOT NULL DEFAULT 'USD' CHECK (sponsorship.is_currency_code(currency)),
    status                    text NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending','accepted','live','completed','refunded','cancelled')),
    stripe_payment_intent_id  text CHECK (stripe_payment_intent_id ~ '^pi_[A-Za-z0-9_]+$'),
    stripe_charge_id          text CHECK (stripe_charge_id ~ '^(ch|py)_[A-Za-z0-9_]+$'),
    stripe_transfer_id        text CHECK (stripe_transfer_id ~ '^tr_[A-Za-z0-9_]+$'),
    application_fee_cents     bigint CHECK (application_fee_cents >= 0),
    payout_status             text NOT NULL DEFAULT 'unpaid'
                              CHECK (payout_status IN ('unpaid','queued','processing','partially_paid','paid','failed','reversed')),
    milestone                 jsonb CHECK (milestone IS NULL OR jsonb_typeof(milestone) = 'object'),
    proof_assets              jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(proof_assets) = 'array'),
    review_score              smallint CHECK (review_score BETWEEN 1 AND 5),
    paid_at                   timestamptz,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sponsorship_orders_package_of_event
        FOREIGN KEY (package_id, event_id)
        REFERENCES sponsorship.sponsorship_packages (id, event_id) ON DELETE RESTRICT,
    CONSTRAINT sponsorship_orders_fee_within_amount
        CHECK (application_fee_cents IS NULL OR application_fee_cents <= amount_cents),
    -- lets an activation name its order's event and sponsor (and no others)
    CONSTRAINT sponsorship_orders_id_parties_key UNIQUE (id, event_id, sponsor_id)
);
CREATE INDEX sponsorship_orders_sponsor_idx ON sponsorship.sponsorship_orders (sponsor_id);
CREATE INDEX sponsorship_orders_event_idx ON sponsorship.sponsorship_orders (event_id);
CREATE INDEX sponsorship_orders_package_idx ON sponsorship.sponsorship_orders (package_id);
CREATE INDEX sponsorship_orders_payable_idx ON sponsorship.sponsorship_orders (event_id)
    WHERE status IN ('accepted','live','completed') AND stripe_charge_id IS NOT NULL;
COMMENT ON TABLE sponsorship.sponsorship_orders IS
    'A sponsor buying a package: amount (minor units), lifecycle status, the Stripe charge, the platform fee, '
    'payout progress, milestone plan, proof of delivery and the sponsor''s review.';
COMMENT ON COLUMN sponsorship.sponsorship_orders.stripe_charge_id IS
    'The recorded charge: an order is paid for only when this is set.';
COMMENT ON COLUMN sponsorship.sponsorship_orders.milestone IS
    'Optional staged release of the payout, e.g. {"stages":[{"on":"accepted","share_bps":3000},{"on":"completed","share_bps":7000}]}.';

CREATE TABLE sponsorship.event_sponsorships (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id      uuid NOT NULL UNIQUE REFERENCES sponsorship.sponsorship_orders(id) ON DELETE CASCADE,
    event_id      uuid NOT NULL REFERENCES sponsorship.events(id) ON DELETE CASCADE,
    sponsor_id    uuid NOT NULL REFERENCES sponsorship.sponsors(id) ON DELETE CASCADE,
    status        text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft','live','completed','evaluated')),
    deliverables  jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(deliverables) = 'array'),
    roi_summary   jsonb CHECK (roi_summary IS NULL OR jsonb_typeof(roi_summary) = 'object'),
    started_at    timestamptz,
    completed_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    evaluated_at  timestamptz,  -- 0.2.0
    CONSTRAINT event_sponsorships_parties_of_order
        FOREIGN KEY (order_id, event_id, sponsor_id)
        REFERENCES sponsorship.sponsorship_orders (id, event_id, sponsor_id) ON DELETE CASCADE,
    CONSTRAINT event_sponsorships_completed_after_start
        CHECK (completed_at IS NULL OR started_at IS NULL OR completed_at >= started_at),
    CONSTRAINT event_sponsorships_evaluated_has_summary
        CHECK (status <> 'evaluated' OR (roi_summary IS NOT NULL AND evaluated_at IS NOT NULL))
);
CREATE INDEX event_sponsorships_event_idx ON sponsorship.event_sponsorships (event_id);
CREATE INDEX event_sponsorships_sponsor_idx ON sponsorship.event_sponsorships (sponsor_id);
COMMENT ON TABLE sponsorship.event_sponsorships IS
    'The activation of a sold package: draft -> live -> completed -> evaluated, deliverables, ROI summary.';
COMMENT ON COLUMN sponsorship.event_sponsorships.roi_summary IS
    'Written by evaluate_sponsorship_roi(): reach, engagement, tickets and cost figures of the activation; '
    'see that function for every key.';
COMMENT ON COLUMN sponsorship.event_sponsorships.started_at IS
    'When the activation went live (set on the change to live when not given): the start of its ROI window.';
COMMENT ON COLUMN sponsorship.event_sponsorships.completed_at IS
    'When the activation completed (set on the change to completed when not given): the end of its ROI window.';

CREATE TABLE sponsorship.payout_configurations (
    id                         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                     uuid NOT NULL UNIQUE REFERENCES sponsorship.organizations(id) ON DELETE CASCADE,
    stripe_connect_account_id  text CHECK (stripe_connect_account_id ~ '^acct_[A-Za-z0-9]+$'),
    platform_fee_bps           integer CHECK (platform_fee_bps BETWEEN 0 AND 10000),
    min_fee_cents              bigint CHECK (min_fee_cents >= 0),
    max_fee_cents              bigint CHECK (max_fee_cents >= 0),
    minimum_payout_cents       bigint NOT NULL DEFAULT 0 CHECK (minimum_payout_cents >= 0),
    payout_schedule            text NOT NULL DEFAULT 'manual' CHECK (payout_schedule IN ('manual','daily','weekly','monthly')),
    auto_payout_enabled        boolean NOT NULL DEFAULT false,
    last_auto_payout_at        timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payout_configurations_fee_bounds CHECK (min_fee_cents IS NULL OR max_fee_cents IS NULL OR min_fee_cents <= max_fee_cents)
);
COMMENT ON COLUMN sponsorship.payout_configurations.last_auto_payout_at IS
    'When queue_due_payouts() last queued this organization''s eligible orders (auto_payout_enabled).';
COMMENT ON TABLE sponsorship.payout_configurations IS
    'How an organization is paid: its Stripe Connect account, fee rate in basis points (NULL: platform default), '
    'optional fee floor and cap, minimum payout and schedule.';

CREATE TABLE sponsorship.sponsorship_payouts (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id            uuid NOT NULL REFERENCES sponsorship.sponsorship_orders(id) ON DELETE RESTRICT,
    org_id              uuid NOT NULL REFERENCES sponsorship.organizations(id) ON DELETE RESTRICT,
    stage               text NOT NULL DEFAULT 'full' CHECK (stage ~ '^[a-z][a-z0-9_]{0,39}$'),
    gross_cents         bigint NOT NULL CHECK (gross_cents > 0),
    fee_cents           bigint NOT NULL CHECK (fee_cents >= 0),
    amount_cents        bigint NOT NULL CHECK (amount_cents > 0),
    currency            text NOT NULL CHECK (sponsorship.is_currency_code(currency)),
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending','processing','completed','failed','reversed')),
    destination_account text NOT NULL CHECK (destination_account ~ '^acct_[A-Za-z0-9]+$'),
    idempotency_key     text NOT NULL UNIQUE,
    stripe_transfer_id  text CHECK (stripe_transfer_id ~ '^tr_[A-Za-z0-9_]+$'),
    stripe_reversal_id  text CHECK (stripe_reversal_id ~ '^trr_[A-Za-z0-9_]+$'),
    failure_reason      text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    CONSTRAINT sponsorship_payouts_one_per_stage UNIQUE (order_id, stage),
    CONSTRAINT sponsorship_payouts_net_is_gross_minus_fee CHECK (amount_cents = gross_cents - fee_cents)
);
CREATE INDEX sponsorship_payouts_org_idx ON sponsorship.sponsorship_payouts (org_id, created_at);
COMMENT ON TABLE sponsorship.sponsorship_payouts IS
    'The ledger of money sent to organizers: one row per order stage, with the Stripe transfer that paid it.';

CREATE TABLE sponsorship.payout_queue (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payout_id        uuid NOT NULL REFERENCES sponsorship.sponsorship_payouts(id) ON DELETE CASCADE,
    action           text NOT NULL DEFAULT 'transfer' CHECK (action IN ('transfer','reversal')),
    priority         integer NOT NULL DEFAULT 0,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending','processing','completed','failed','dead')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer CHECK (max_attempts > 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    locked_at        timestamptz,
    last_error       text,
    maybe_sent       boolean NOT NULL DEFAULT false,
    enqueued_at      timestamptz NOT NULL DEFAULT now(),
    processed_at     timestamptz,
    CONSTRAINT payout_queue_one_per_action UNIQUE (payout_id, action)
);
CREATE INDEX payout_queue_ready_idx ON sponsorship.payout_queue (priority DESC, next_attempt_at)
    WHERE status IN ('pending','failed');
COMMENT ON COLUMN sponsorship.payout_queue.maybe_sent IS
    'An attempt may have reached Stripe (its outcome was unknown, or its claim was taken over): never dead-lettered '
    'or cancelled, only resolved by resending with the same idempotency key.';
COMMENT ON COLUMN sponsorship.payout_queue.max_attempts IS
    'Attempts before the row is dead-lettered; NULL: sponsorship.payout_max_attempts.';
COMMENT ON TABLE sponsorship.payout_queue IS
    'Work for the payout processor: one Stripe call per row, retried with backoff, dead-lettered after max_attempts.';

---------------------------------------------------------------------------------------
-- Matching
---------------------------------------------------------------------------------------

CREATE TABLE sponsorship.scoring_weights (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version                integer NOT NULL UNIQUE CHECK (version > 0),
    budget_fit             numeric(6,5) NOT NULL CHECK (budget_fit >= 0),
    audience_overlap       numeric(6,5) NOT NULL CHECK (audience_overlap >= 0),
    geo_fit                numeric(6,5) NOT NULL CHECK (geo_fit >= 0),
    engagement_quality     numeric(6,5) NOT NULL CHECK (engagement_quality >= 0),
    objectives_similarity  numeric(6,5) NOT NULL CHECK (objectives_similarity >= 0),
    is_active              boolean NOT NULL DEFAULT false,
    note                   text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT scoring_weights_sum_to_one CHECK (
        budget_fit + audience_overlap + geo_fit + engagement_quality + objectives_similarity = 1)
);
CREATE UNIQUE INDEX scoring_weights_one_active_idx ON sponsorship.scoring_weights (is_active) WHERE is_active;
COMMENT ON TABLE sponsorship.scoring_weights IS
    'Weights of the five match factors; exactly one active version; each version sums to 1.';
INSERT INTO sponsorship.scoring_weights
    (version, budget_fit, audience_overlap, geo_fit, engagement_quality, objectives_similarity, is_active, note)
VALUES (1, 0.30, 0.25, 0.15, 0.20, 0.10, true, 'default weights (SPEC §3)');

CREATE TABLE sponsorship.sponsorship_matches (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id         uuid NOT NULL REFERENCES sponsorship.events(id) ON DELETE CASCADE,
    sponsor_id       uuid NOT NULL REFERENCES sponsorship.sponsors(id) ON DELETE CASCADE,
    score            numeric(6,5) NOT NULL CHECK (score BETWEEN 0 AND 1),
    overlap_metrics  jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(overlap_metrics) = 'object'),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','suggested','accepted','rejected')),
    model_version    text,
    weights_version  integer,
    computed_at      timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sponsorship_matches_pair_key UNIQUE (event_id, sponsor_id)
);
-- (event_id, …) lookups use the pair key; an event holds tens of stored matches at most.
CREATE INDEX sponsorship_matches_sponsor_score_idx ON sponsorship.sponsorship_matches (sponsor_id, score DESC);
COMMENT ON TABLE sponsorship.sponsorship_matches IS
    'How well a sponsor fits an event: score in [0,1], overlap_metrics = the explained breakdown, review status.';

CREATE TABLE sponsorship.fit_recalc_queue (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         uuid REFERENCES sponsorship.events(id) ON DELETE CASCADE,
    sponsor_id       uuid REFERENCES sponsorship.sponsors(id) ON DELETE CASCADE,
    priority         integer NOT NULL DEFAULT 0,
    reason           text,
    enqueued_at      timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    processed_at     timestamptz,
    CONSTRAINT fit_recalc_queue_names_something CHECK (event_id IS NOT NULL OR sponsor_id IS NOT NULL)
);
-- One pending row per (event, sponsor) pair; a NULL side means "against everything".
CREATE UNIQUE INDEX fit_recalc_queue_pending_pair_idx
    ON sponsorship.fit_recalc_queue (event_id, sponsor_id) NULLS NOT DISTINCT
    WHERE processed_at IS NULL;
CREATE INDEX fit_recalc_queue_ready_idx ON sponsorship.fit_recalc_queue (priority DESC, enqueued_at)
    WHERE processed_at IS NULL;
COMMENT ON TABLE sponsorship.fit_recalc_queue IS
    'Pairs whose match score must be recomputed; a row with only event_id or only sponsor_id means against everything.';

CREATE TABLE sponsorship.mv_refresh_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    view_name    text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    duration_ms  numeric(12,3) CHECK (duration_ms >= 0),
    concurrent   boolean NOT NULL DEFAULT false,
    status       text NOT NULL CHECK (status IN ('running','ok','error')),
    row_count    bigint,
    error        text
);
CREATE INDEX mv_refresh_log_view_idx ON sponsorship.mv_refresh_log (view_name, started_at DESC);
COMMENT ON TABLE sponsorship.mv_refresh_log IS 'Every materialized view refresh: when, how long, outcome and error.';

---------------------------------------------------------------------------------------
-- Monthly partitions of the raw fact tables
---------------------------------------------------------------------------------------

-- Creates the partition of `p_parent` (a fact table) holding the month that contains
-- `p_month`, if it does not exist yet. Months are UTC months, whatever the session's time
-- zone. Rows of that month already in the DEFAULT partition move into the new one, in the
-- same transaction (writers to the parent wait meanwhile). RLS is enabled on every partition
-- (they are tables too). SECURITY DEFINER: creating a partition takes the parent's owner;
-- EXECUTE is for the service role (90_finalize.sql).
CREATE FUNCTION sponsorship.create_month_partition(p_parent regclass, p_month date,
                                                   OUT partition_name text, OUT created boolean, OUT rows_moved bigint)
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    v_from     date;
    v_to       date;
    v_lo       timestamptz;
    v_hi       timestamptz;
    v_default  regclass;
    v_existing regclass;
    v_columns  text;
BEGIN
    IF p_parent IS NULL OR p_month IS NULL THEN
        RAISE EXCEPTION 'p_parent and p_month must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_parent NOT IN ('sponsorship.event_impressions'::regclass, 'sponsorship.ticket_analytics'::regclass) THEN
        RAISE EXCEPTION '% is not a partitioned fact table of sponsorship (event_impressions, ticket_analytics)', p_parent
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_from := date_trunc('month', p_month)::date;
    v_to := (date_trunc('month', p_month) + interval '1 month')::date;
    v_lo := v_from::timestamp AT TIME ZONE 'UTC';
    v_hi := v_to::timestamp AT TIME ZONE 'UTC';
    partition_name := format('%s_y%sm%s', (SELECT relname FROM pg_catalog.pg_class WHERE oid = p_parent),
                             to_char(v_from, 'YYYY'), to_char(v_from, 'MM'));
    created := false;
    rows_moved := 0;
    -- one creator at a time per table
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('sponsorship.partition:' || p_parent::text));
    v_existing := to_regclass(format('sponsorship.%I', partition_name));
    IF v_existing IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = v_existing AND i.inhparent = p_parent) THEN
            RAISE EXCEPTION 'sponsorship.% exists but is not a partition of % (a month detached by retention?)',
                  partition_name, p_parent
                  USING ERRCODE = 'duplicate_table',
                        HINT = 'Archive and drop it, or rename it, before making this month again.';
        END IF;
        RETURN;
    END IF;
    SELECT i.inhrelid::regclass INTO v_default
      FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = p_parent AND pg_catalog.pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT';
    IF v_default IS NOT NULL THEN
        -- no writes while rows change partition
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', p_parent);
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE created_at >= %L AND created_at < %L)',
                       v_default, v_lo, v_hi) INTO created;
    END IF;
    IF created THEN
        -- the DEFAULT partition holds rows of this month: a plain PARTITION OF would fail
        -- ("would be violated by some row"); build the month beside it, move them, attach it
        EXECUTE format('CREATE TABLE sponsorship.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                       partition_name, p_parent);
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_columns
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = p_parent AND a.attnum > 0 AND NOT a.attisdropped;
        EXECUTE format('WITH moved AS (DELETE FROM %s WHERE created_at >= %L AND created_at < %L RETURNING %s) '
                       'INSERT INTO sponsorship.%I (%s) SELECT %s FROM moved',
                       v_default, v_lo, v_hi, v_columns, partition_name, v_columns, v_columns);
        GET DIAGNOSTICS rows_moved = ROW_COUNT;
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION sponsorship.%I FOR VALUES FROM (%L) TO (%L)',
                       p_parent, partition_name, v_lo, v_hi);
    ELSE
        EXECUTE format('CREATE TABLE sponsorship.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                       partition_name, p_parent, v_lo, v_hi);
    END IF;
    created := true;
    EXECUTE format('ALTER TABLE sponsorship.%I ENABLE ROW LEVEL SECURITY', partition_name);
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        EXECUTE format('CREATE POLICY service_role_all ON sponsorship.%I TO service_role '
                       'USING (true) WITH CHECK (true)', partition_name);
        EXECUTE format('GRANT ALL ON sponsorship.%I TO service_role', partition_name);
    END IF;
    EXECUTE format('COMMENT ON TABLE sponsorship.%I IS %L', partition_name,
                   format('Partition of %s for %s', p_parent, to_char(v_from, 'YYYY-MM')));
END
$fn$;
COMMENT ON FUNCTION sponsorship.create_month_partition(regclass, date) IS
    'Creates (if missing) the monthly partition of event_impressions or ticket_analytics holding the given date, '
    'moving that month''s rows out of the DEFAULT partition; returns its name, whether it was created and the rows moved.';

CREATE FUNCTION sponsorship.ensure_month_partition(p_parent regclass, p_month date) RETURNS text
LANGUAGE sql
AS $fn$ SELECT (sponsorship.create_month_partition(p_parent, p_month)).partition_name $fn$;
COMMENT ON FUNCTION sponsorship.ensure_month_partition(regclass, date) IS
    'Creates (if missing) the monthly partition of a fact table that holds the given date; returns its name.';

CREATE TABLE sponsorship.event_impressions_default PARTITION OF sponsorship.event_impressions DEFAULT;
CREATE TABLE sponsorship.ticket_analytics_default PARTITION OF sponsorship.ticket_analytics DEFAULT;
COMMENT ON TABLE sponsorship.event_impressions_default IS 'Rows outside every monthly partition of event_impressions.';
COMMENT ON TABLE sponsorship.ticket_analytics_default IS 'Rows outside every monthly partition of ticket_analytics.';

-- At install: the last 12 months and the next 3 (UTC months).
SELECT sponsorship.ensure_month_partition(t, (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => m))::date)
  FROM unnest(ARRAY['sponsorship.event_impressions', 'sponsorship.ticket_analytics']::regclass[]) t,
       generate_series(-12, 3) m;
