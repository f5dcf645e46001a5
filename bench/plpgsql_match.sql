-- The baseline for the matching benchmark: the same formula as fn_compute_match_score,
-- written as well as PL/pgSQL allows (one query per call, then arithmetic). It returns only
-- the score (no explanation), so the comparison favours it.
CREATE SCHEMA IF NOT EXISTS bench;

DROP FUNCTION IF EXISTS bench.plpgsql_match_score(uuid, uuid);
CREATE OR REPLACE FUNCTION bench.plpgsql_match_score(p_event_id uuid, p_sponsor_id uuid, OUT score numeric, OUT breakdown jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, sponsorship, public
AS $fn$
DECLARE
    r record;
    b float8; fit_budget float8; n int := 0; s float8 := 0; p bigint;
    s_age jsonb := '{}'; s_total float8 := 0; e_total float8 := 0; kv record; age_o float8;
    targets text[]; reg float8; intr float8; interests text[];
    num float8 := 0; den float8 := 0; aud float8;
    geo float8; eng float8; obj float8; temporal float8; end_days float8; ws float8; key text; t text;
BEGIN
    SELECT pr.annual_budget_cents AS budget, COALESCE(pr.currency, 'USD') AS cur, pr.target_audience AS ta,
           COALESCE(pr.preferred_categories, '{}') AS pcats, COALESCE(pr.regions, '{}') AS regions,
           pr.objectives_embedding AS oe, lower(e.category) AS category, lower(e.city) AS city, lower(e.country) AS country,
           extract(epoch FROM COALESCE(e.end_at, e.start_at) - now()) / 86400 AS end_days,
           i.age_segments AS e_age, i.geo_distribution AS e_geo, q.final_quality_score AS quality,
           e.description_embedding AS de, pk.prices,
           (SELECT array_agg(c.country) FROM sponsorship.mv_city_countries c
             WHERE c.city = ANY (SELECT lower(btrim(rr)) FROM unnest(pr.regions) rr)) AS city_countries,
           CASE WHEN pk.prices IS NULL AND pr.annual_budget_cents IS NOT NULL THEN
                (SELECT tm.median_price_cents FROM sponsorship.mv_tier_price_medians tm
                  WHERE tm.quality_tier = q.quality_tier AND tm.currency = COALESCE(pr.currency, 'USD')) END AS median,
           w.budget_fit AS wb, w.audience_overlap AS wa, w.geo_fit AS wg, w.engagement_quality AS we,
           w.objectives_similarity AS wo
      INTO r
      FROM sponsorship.events e
     CROSS JOIN sponsorship.sponsors sp
      LEFT JOIN sponsorship.sponsor_profiles pr ON pr.sponsor_id = sp.id
      LEFT JOIN sponsorship.event_audience_insights i ON i.event_id = e.id
      LEFT JOIN sponsorship.mv_event_quality_scores q ON q.event_id = e.id
      LEFT JOIN LATERAL (SELECT array_agg(x.price_cents ORDER BY x.price_cents) AS prices
                           FROM sponsorship.sponsorship_packages x
                          WHERE x.event_id = e.id AND x.is_active AND x.sold < x.inventory
                            AND x.currency = COALESCE(pr.currency, 'USD')) pk ON true
     CROSS JOIN sponsorship.scoring_weights w
     WHERE e.id = p_event_id AND sp.id = p_sponsor_id AND w.is_active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown event or sponsor' USING ERRCODE = 'no_data_found';
    END IF;

    -- budget_fit
    IF r.budget IS NULL THEN
        fit_budget := 0.5;
    ELSE
        b := r.budget * 0.25;
        IF r.prices IS NOT NULL THEN
            FOREACH p IN ARRAY r.prices LOOP
                s := s + CASE WHEN p <= 0 THEN 1 ELSE LEAST(1, b / p) END;
                n := n + 1;
            END LOOP;
            p := r.prices[1];
            fit_budget := 0.6 * CASE WHEN p <= 0 THEN 1 ELSE LEAST(1, b / p) END + 0.4 * (s / n);
        ELSIF r.median IS NOT NULL THEN
            fit_budget := CASE WHEN r.median <= 0 THEN 1 ELSE LEAST(1, b / r.median) END;
        ELSE
            fit_budget := 0.5;
        END IF;
    END IF;

    -- audience_overlap: age
    IF jsonb_typeof(r.ta -> 'age_segments') = 'object' THEN
        FOR kv IN SELECT lower(btrim(k)) AS k, sum(v::text::float8) AS v FROM jsonb_each(r.ta -> 'age_segments') AS t(k, v)
                   WHERE jsonb_typeof(v) = 'number' AND v::text::float8 > 0 AND btrim(k) <> '' GROUP BY 1 LOOP
            s_age := s_age || jsonb_build_object(kv.k, kv.v);
            s_total := s_total + kv.v;
        END LOOP;
    ELSIF jsonb_typeof(r.ta -> 'age_segments') = 'array' THEN
        FOR kv IN SELECT DISTINCT lower(btrim(v)) AS k FROM jsonb_array_elements_text(r.ta -> 'age_segments') v WHERE btrim(v) <> '' LOOP
            s_age := s_age || jsonb_build_object(kv.k, 1);
            s_total := s_total + 1;
        END LOOP;
    END IF;
    age_o := NULL;
    IF s_total > 0 AND r.e_age IS NOT NULL THEN
        SELECT sum(v::text::float8) INTO e_total FROM jsonb_each(r.e_age) AS t(k, v)
         WHERE jsonb_typeof(v) = 'number' AND v::text::float8 > 0;
        IF e_total > 0 THEN
            age_o := 0;
            FOR kv IN SELECT lower(btrim(k)) AS k, sum(v::text::float8) AS v FROM jsonb_each(r.e_age) AS t(k, v)
                       WHERE jsonb_typeof(v) = 'number' AND v::text::float8 > 0 GROUP BY 1 LOOP
                age_o := age_o + LEAST(kv.v / e_total, COALESCE((s_age ->> kv.k)::float8, 0) / s_total);
            END LOOP;
            age_o := LEAST(1, GREATEST(0, age_o));
        END IF;
    END IF;
    -- audience_overlap: regions
    SELECT array_agg(DISTINCT x) INTO targets FROM (
        SELECT lower(btrim(v)) AS x FROM jsonb_array_elements_text(
               CASE WHEN jsonb_typeof(r.ta -> 'regions') = 'array' THEN r.ta -> 'regions' ELSE '[]' END) v
        UNION SELECT lower(btrim(v)) FROM unnest(r.regions) v) t WHERE x <> '';
    reg := NULL;
    IF 'global' = ANY (targets) THEN
        reg := 1;
    ELSIF targets IS NOT NULL AND r.e_geo IS NOT NULL AND r.e_geo <> '{}' THEN
        reg := 0;
        FOR kv IN SELECT k, v::text::float8 AS v FROM jsonb_each(r.e_geo) AS t(k, v)
                   WHERE jsonb_typeof(v) = 'number' AND v::text::float8 > 0 LOOP
            key := ' ' || btrim(regexp_replace(lower(kv.k), '[^[:alnum:]]+', ' ', 'g')) || ' ';
            FOREACH t IN ARRAY targets LOOP
                IF position(' ' || t || ' ' IN key) > 0 THEN
                    reg := reg + kv.v;
                    EXIT;
                END IF;
            END LOOP;
        END LOOP;
        reg := LEAST(1, GREATEST(0, reg));
    END IF;
    -- audience_overlap: interests
    SELECT array_agg(DISTINCT x) INTO interests FROM (
        SELECT lower(btrim(v)) AS x FROM jsonb_array_elements_text(
               CASE WHEN jsonb_typeof(r.ta -> 'interests') = 'array' THEN r.ta -> 'interests' ELSE '[]' END) v
        UNION SELECT lower(btrim(v)) FROM unnest(r.pcats) v) t WHERE x <> '';
    intr := CASE WHEN r.category IS NOT NULL AND interests IS NOT NULL
                 THEN CASE WHEN r.category = ANY (interests) THEN 1 ELSE 0 END END;
    IF age_o IS NOT NULL THEN num := num + age_o * 0.4; den := den + 0.4; END IF;
    IF reg IS NOT NULL THEN num := num + reg * 0.3; den := den + 0.3; END IF;
    IF intr IS NOT NULL THEN num := num + intr * 0.3; den := den + 0.3; END IF;
    aud := CASE WHEN den > 0 THEN num / den ELSE 0.5 END;

    -- geo_fit
    SELECT array_agg(lower(btrim(v))) INTO targets FROM unnest(r.regions) v WHERE btrim(v) <> '';
    geo := CASE
        WHEN targets IS NULL THEN 0.5
        WHEN 'global' = ANY (targets) THEN 1
        WHEN r.city IS NULL AND r.country IS NULL THEN 0.5
        WHEN r.city = ANY (targets) OR r.country = ANY (targets) THEN 1
        WHEN r.country = ANY (r.city_countries) THEN 0.5
        ELSE 0 END;

    eng := COALESCE(LEAST(1, GREATEST(0, r.quality)), 0.5);
    obj := CASE WHEN r.oe IS NOT NULL AND r.de IS NOT NULL AND NOT (1 - (r.oe <=> r.de)) = 'NaN'::float8
                THEN GREATEST(0, 1 - (r.oe <=> r.de)) ELSE 0.5 END;
    temporal := CASE WHEN r.end_days >= 0 THEN 1 ELSE GREATEST(0.1, power(0.5, -r.end_days / 30)) END;
    ws := r.wb * fit_budget + r.wa * aud + r.wg * geo + r.we * eng + r.wo * obj;
    score := round(LEAST(1, GREATEST(0, ws * temporal))::numeric, 5);
    -- the same explanation fn_compute_match_score gives: each factor's value, weight,
    -- contribution and driving inputs, the timing, and what was missing
    breakdown := jsonb_build_object(
        'score', score, 'budget_fit', fit_budget, 'audience_overlap', aud, 'geo_fit', geo,
        'engagement_quality', eng, 'objectives_similarity', obj, 'temporal_fit', temporal, 'weighted_sum', ws,
        'factors', jsonb_build_object(
            'budget_fit', jsonb_build_object('value', fit_budget, 'weight', r.wb, 'contribution', fit_budget * r.wb,
                'inputs', jsonb_build_object('annual_budget_cents', r.budget, 'currency', r.cur,
                                             'cheapest_package_cents', r.prices[1], 'tier_median_package_cents', r.median)),
            'audience_overlap', jsonb_build_object('value', aud, 'weight', r.wa, 'contribution', aud * r.wa,
                'inputs', jsonb_build_object('age_overlap', age_o, 'region_share', reg, 'interest_match', intr)),
            'geo_fit', jsonb_build_object('value', geo, 'weight', r.wg, 'contribution', geo * r.wg,
                'inputs', jsonb_build_object('sponsor_regions', r.regions, 'event_city', r.city, 'event_country', r.country)),
            'engagement_quality', jsonb_build_object('value', eng, 'weight', r.we, 'contribution', eng * r.we,
                'inputs', jsonb_build_object('quality_score', r.quality)),
            'objectives_similarity', jsonb_build_object('value', obj, 'weight', r.wo, 'contribution', obj * r.wo,
                'inputs', jsonb_build_object('neutral', r.oe IS NULL OR r.de IS NULL))),
        'temporal', jsonb_build_object('multiplier', temporal, 'days_since_end', CASE WHEN r.end_days < 0 THEN -r.end_days END),
        'missing', to_jsonb(array_remove(ARRAY[
            CASE WHEN r.budget IS NULL THEN 'annual_budget_cents' END,
            CASE WHEN r.quality IS NULL THEN 'quality_score' END,
            CASE WHEN r.oe IS NULL THEN 'objectives_embedding' END,
            CASE WHEN r.de IS NULL THEN 'description_embedding' END], NULL)));
END
$fn$;
