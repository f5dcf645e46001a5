-- `scripts/bench.sh search`: text search over :events events (default 100,000), with and
-- without a filter that keeps 1% of them. Latency includes embedding the query; recall@10 is
-- against an exact scan of the same filter. The targets are absolute (median <= 20 ms,
-- recall@10 >= 0.95), so each ratio is against its target.
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;
SET maintenance_work_mem = '1GB';
SELECT set_config('bench.events', :'events', false) AS _ \gset

\echo '   building the event texts and embedding 5,000 of them …'
CREATE TEMP TABLE texts AS
SELECT row_number() OVER () - 1 AS k,
       format('%s %s in %s: %s, for %s.', a, kind, place, hook, who) AS t, kind
  FROM unnest(ARRAY['Annual','Summer','Winter','Downtown','Riverside','International','Community','Grand','Late-night',
                    'Weekend']) a,
       unnest(ARRAY['music festival','developer conference','city marathon','craft beer fair','art exhibition',
                    'food market','esports tournament','jazz night','startup summit','charity gala']) kind,
       unnest(ARRAY['the park','the old town','the harbour','a warehouse','the convention center']) place,
       unnest(ARRAY['live bands and food trucks','keynotes and workshops','thousands of runners',
                     'tastings from local brewers','works by young artists','dozens of street food stalls',
                     'teams competing for prizes','quartets and big bands','founders pitching investors',
                     'an auction raising money for schools']) hook,
       unnest(ARRAY['families']) who;
SELECT count(*) AS distinct_texts FROM texts;
CREATE TEMP TABLE centers (k bigint PRIMARY KEY, v vector(384));
DO $$
BEGIN
    FOR c IN 0..(SELECT max(k) / 250 FROM texts) LOOP
        INSERT INTO centers
        SELECT u.k, u.v FROM (SELECT array_agg(k ORDER BY k) AS ks, sponsorship.embed_batch(array_agg(t ORDER BY k)) AS vs
                                FROM texts WHERE k / 250 = c) x, unnest(x.ks, x.vs) AS u(k, v);
    END LOOP;
END $$;

\echo '   loading the events (each a mix of two texts'' embeddings, so no two are alike) and building the HNSW index …'
DROP INDEX sponsorship.events_description_embedding_hnsw;
SET session_replication_role = replica;   -- bench data: skip the queue and log triggers
INSERT INTO sponsorship.organizations (id, name) VALUES ('00000000-0000-0000-0000-00000000b0b0', 'Bench org');
INSERT INTO sponsorship.events (id, org_id, title, category, city, country, start_at, description_embedding)
SELECT md5('search-event-' || g)::uuid, '00000000-0000-0000-0000-00000000b0b0', t.t, t.kind,
       CASE WHEN g % 100 = 0 THEN 'Reykjavik'
            ELSE (ARRAY['Austin','Berlin','London','Paris','Tokyo','Toronto','Sydney','Madrid','Chicago','Denver',
                        'Boston','Lisbon','Dublin','Oslo','Vienna','Prague','Seattle','Miami','Rome','Zurich'])[1 + g % 20] END,
       'XX', now() + (g % 365 || ' days')::interval,
       sponsorship.normalize_embedding(
         (SELECT array_agg(x * w + y * (1 - w)) FROM unnest(c.v::real[], d.v::real[]) u(x, y))::vector)
  FROM (SELECT g, (0.6 + 0.35 * random())::real AS w FROM generate_series(1, current_setting('bench.events')::int) g) r
  JOIN texts t ON t.k = r.g % 5000
  JOIN centers c ON c.k = t.k
  JOIN centers d ON d.k = (r.g * 7919 + 1) % 5000;
SET session_replication_role = origin;
CREATE INDEX events_description_embedding_hnsw ON sponsorship.events
    USING hnsw (description_embedding vector_cosine_ops) WITH (m = 24, ef_construction = 128);
ANALYZE sponsorship.events;
SELECT count(*) AS events, count(*) FILTER (WHERE city = 'Reykjavik') AS in_reykjavik FROM sponsorship.events;

CREATE TEMP TABLE queries (n serial PRIMARY KEY, q text NOT NULL);
COPY queries (q) FROM :'queries';
CREATE TEMP TABLE runs (mode text, n int, ms float8, recall float8);
DO $$
DECLARE
    x record; t0 timestamptz; got uuid[]; want uuid[]; qv vector;
BEGIN
    PERFORM sponsorship.semantic_event_search('warm up', p_limit => 10);   -- loads the model
    FOR x IN SELECT * FROM queries ORDER BY n LOOP
        qv := sponsorship.embed(x.q);
        -- the embedding alone
        t0 := clock_timestamp();
        PERFORM sponsorship.embed(x.q);
        INSERT INTO runs VALUES ('embedding the query alone', x.n, extract(epoch FROM clock_timestamp() - t0) * 1000, NULL);
        -- 1% filter, as shipped (selective filters are ranked exactly)
        want := ARRAY(SELECT id FROM sponsorship.events WHERE lower(city) = 'reykjavik'
                       ORDER BY (description_embedding <=> qv) + 0, id LIMIT 10);
        t0 := clock_timestamp();
        got := ARRAY(SELECT event_id FROM sponsorship.semantic_event_search(x.q, p_city => 'Reykjavik', p_limit => 10));
        INSERT INTO runs VALUES ('1% filter (city), as shipped', x.n, extract(epoch FROM clock_timestamp() - t0) * 1000,
                                 cardinality(ARRAY(SELECT unnest(got) INTERSECT SELECT unnest(want))) / 10.0);
        -- 1% filter without the exact path (sponsorship.search_exact_below = 0): the planner
        -- picks the HNSW walk with iterative scans or the city index
        PERFORM set_config('sponsorship.search_exact_below', '0', true);
        t0 := clock_timestamp();
        got := ARRAY(SELECT event_id FROM sponsorship.semantic_event_search(x.q, p_city => 'Reykjavik', p_limit => 10));
        INSERT INTO runs VALUES ('1% filter (city), exact path off', x.n,
                                 extract(epoch FROM clock_timestamp() - t0) * 1000,
                                 cardinality(ARRAY(SELECT unnest(got) INTERSECT SELECT unnest(want))) / 10.0);
        PERFORM set_config('sponsorship.search_exact_below', '2000', true);
        -- no filter: HNSW
        want := ARRAY(SELECT id FROM sponsorship.events ORDER BY (description_embedding <=> qv) + 0, id LIMIT 10);
        t0 := clock_timestamp();
        got := ARRAY(SELECT event_id FROM sponsorship.semantic_event_search(x.q, p_limit => 10));
        INSERT INTO runs VALUES ('no filter', x.n, extract(epoch FROM clock_timestamp() - t0) * 1000,
                                 cardinality(ARRAY(SELECT unnest(got) INTERSECT SELECT unnest(want))) / 10.0);
    END LOOP;
END $$;

\echo
\echo '━━ Text search over the events (latency includes embedding the query) ━━'
SELECT mode, count(*) AS queries,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS median_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p95_ms,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) / 20)::numeric, 2) || 'x' AS median_vs_20ms,
       round(avg(recall)::numeric, 3) AS recall_at_10,
       CASE WHEN avg(recall) IS NULL THEN '' ELSE round((avg(recall) / 0.95)::numeric, 3) || 'x' END AS recall_vs_0_95
  FROM runs GROUP BY mode ORDER BY min(n), mode;
