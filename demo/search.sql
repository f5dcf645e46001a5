-- Embeddings computed inside Postgres, and search by meaning from plain English.
\set ON_ERROR_STOP on
\pset footer off
\pset null '—'

\echo
\echo '━━ Embedding coverage after the backfill ━━'
SELECT embedding, total, current, stale, without_text, coverage FROM sponsorship.embedding_coverage();

\echo
\echo '━━ "craft beer brand wanting outdoor music festivals in Austin" (semantic_sponsor_search, sponsors targeting Austin) ━━'
SELECT left(s.sponsor_name, 28) AS sponsor, s.industry, s.annual_budget_cents / 100 AS budget_usd,
       s.relevance_score, s.match_score,
       left(p.brand_objectives ->> 'description', 70) AS objectives
  FROM sponsorship.semantic_sponsor_search('craft beer brand wanting outdoor music festivals in Austin',
                                           p_regions => ARRAY['Austin'], p_limit => 5) s
  JOIN sponsorship.sponsor_profiles p ON p.sponsor_id = s.sponsor_id;

\echo
\echo '━━ "outdoor music festival with local beer" in Austin (semantic_event_search, filtered by city) ━━'
SELECT left(event_title, 40) AS event, city, category, start_at::date AS starts, quality_score, relevance_score
  FROM sponsorship.semantic_event_search('outdoor music festival with local beer', p_city => 'Austin', p_limit => 5);

\echo
\echo '━━ "where can we hire machine learning engineers" in the next six months ━━'
SELECT left(e.event_title, 40) AS event, e.city, e.category, e.start_at::date AS starts, e.relevance_score
  FROM sponsorship.semantic_event_search('where can we hire machine learning engineers',
                                         p_start_date => current_date, p_end_date => current_date + 180, p_limit => 5) e;

\echo
\echo '━━ Meaning, not words: each query shares no word with the events it finds ━━'
SELECT q.query, left(e.event_title, 32) AS event, e.relevance_score,
       COALESCE((SELECT string_agg(DISTINCT w, ' ') FROM regexp_split_to_table(lower(q.query), '[^a-z]+') w
                  WHERE w <> '' AND lower(sponsorship.event_embedding_text(ev.title, ev.category, ev.description))
                                    ~ ('\m' || w || '\M')), '—') AS words_shared,
       left(ev.description, 56) AS description
  FROM (VALUES (1, 'people jogging'), (2, 'neural networks')) q(n, query)
 CROSS JOIN LATERAL sponsorship.semantic_event_search(q.query, p_limit => 3) e
  JOIN sponsorship.events ev ON ev.id = e.event_id
 ORDER BY q.n, e.relevance_score DESC;

\echo
\echo '━━ Events like a given one (find_similar_events on its stored embedding) ━━'
SELECT id AS seed_event, title AS seed_title FROM sponsorship.events WHERE category = 'sports' ORDER BY id LIMIT 1 \gset
\echo '   seed:' :'seed_title'
SELECT left(event_title, 44) AS similar_event, category, similarity_score
  FROM sponsorship.find_similar_events((SELECT description_embedding FROM sponsorship.events WHERE id = :'seed_event'), 5, 0.5)
 WHERE event_id <> :'seed_event';
