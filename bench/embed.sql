-- `scripts/bench.sh embed`: embed() and embed_batch() in this backend (one thread), on the
-- same sentences sentence-transformers just embedded in Python (:py_one, :py_batched texts/s).
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;
CREATE TEMP TABLE sentences (n serial PRIMARY KEY, t text NOT NULL);
COPY sentences (t) FROM :'sentences';
CREATE TEMP TABLE results (measure text, rust numeric, pytorch numeric, ratio numeric, target text);
SELECT vector_dims(sponsorship.embed('warm up: loads the model')) AS _ \gset
-- (psql does not substitute variables inside the DO block's quotes; settings carry them)
SELECT set_config('bench.passes', :'passes', false), set_config('bench.py_one', :'py_one', false),
       set_config('bench.py_batched', :'py_batched', false) \gset
DO $$
DECLARE
    t0 timestamptz; total int; passes int := current_setting('bench.passes')::int; one float8; batched float8; x record;
    py_one float8 := current_setting('bench.py_one')::float8; py_batched float8 := current_setting('bench.py_batched')::float8;
BEGIN
    SELECT count(*) INTO total FROM sentences;
    PERFORM sponsorship.embed(s.t) FROM sentences s;                 -- warm
    t0 := clock_timestamp();
    FOR p IN 1..passes LOOP
        FOR x IN SELECT s.t FROM sentences s ORDER BY s.n LOOP
            PERFORM sponsorship.embed(x.t);
        END LOOP;
    END LOOP;
    one := passes * total / extract(epoch FROM clock_timestamp() - t0);
    t0 := clock_timestamp();
    FOR p IN 1..passes LOOP
        PERFORM sponsorship.embed_batch(array_agg(s.t ORDER BY s.n)) FROM sentences s;
    END LOOP;
    batched := passes * total / extract(epoch FROM clock_timestamp() - t0);
    INSERT INTO results VALUES
      ('embed(text), one text per call', round(one::numeric, 1), round(py_one::numeric, 1), round((one / py_one)::numeric, 2),
       '>= 1x sentence-transformers, one thread'),
      ('embed_batch(text[]), all sentences in one call', round(batched::numeric, 1), round(py_batched::numeric, 1),
       round((batched / py_batched)::numeric, 2), '>= 1x sentence-transformers, one thread');
END $$;
\echo
\echo '━━ Embedding throughput, texts per second, one thread each ━━'
SELECT measure, rust AS "extension", pytorch AS "sentence-transformers", ratio || 'x' AS ratio, target FROM results;
