-- A realistic demo marketplace: organizers in 27 cities on four continents, hundreds of
-- brands with budgets, objectives and target audiences, thousands of events with
-- descriptions and measured audiences, packages, orders, activations, impressions and
-- ticket sales. Deterministic: the same seed gives the same marketplace.
\set ON_ERROR_STOP on
\set QUIET on
SET max_parallel_workers_per_gather = 0;   -- keeps random() deterministic
SELECT setseed(0.2026) \gset

BEGIN;

CREATE TEMP TABLE demo_cities (city text, country text, currency text, lat float8, lng float8, weight int);
INSERT INTO demo_cities VALUES
 ('Austin','US','USD',30.2672,-97.7431,6), ('New York','US','USD',40.7128,-74.0060,8),
 ('San Francisco','US','USD',37.7749,-122.4194,5), ('Chicago','US','USD',41.8781,-87.6298,5),
 ('Los Angeles','US','USD',34.0522,-118.2437,6), ('Seattle','US','USD',47.6062,-122.3321,3),
 ('Miami','US','USD',25.7617,-80.1918,4), ('Denver','US','USD',39.7392,-104.9903,3),
 ('Nashville','US','USD',36.1627,-86.7816,3), ('Boston','US','USD',42.3601,-71.0589,3),
 ('Toronto','CA','CAD',43.6532,-79.3832,4), ('Vancouver','CA','CAD',49.2827,-123.1207,2),
 ('London','GB','GBP',51.5074,-0.1278,7), ('Manchester','GB','GBP',53.4808,-2.2426,2),
 ('Berlin','DE','EUR',52.5200,13.4050,5), ('Munich','DE','EUR',48.1351,11.5820,2),
 ('Paris','FR','EUR',48.8566,2.3522,5), ('Amsterdam','NL','EUR',52.3676,4.9041,3),
 ('Barcelona','ES','EUR',41.3874,2.1686,3), ('Lisbon','PT','EUR',38.7223,-9.1393,2),
 ('Dublin','IE','EUR',53.3498,-6.2603,2), ('Stockholm','SE','SEK',59.3293,18.0686,2),
 ('Sydney','AU','AUD',-33.8688,151.2093,3), ('Melbourne','AU','AUD',-37.8136,144.9631,2),
 ('Singapore','SG','SGD',1.3521,103.8198,2), ('Tokyo','JP','JPY',35.6762,139.6503,3),
 ('Mexico City','MX','MXN',19.4326,-99.1332,2);

-- Minor units per US dollar (approximate; JPY has no minor unit).
CREATE TEMP TABLE demo_fx (currency text PRIMARY KEY, per_usd_cent numeric);
INSERT INTO demo_fx VALUES ('USD',1),('CAD',1.37),('GBP',0.79),('EUR',0.92),('SEK',10.5),
                           ('AUD',1.52),('SGD',1.34),('JPY',1.50),('MXN',17.1);

CREATE TEMP TABLE demo_categories (category text, weight int, titles text[], hooks text[], audience text[]);
INSERT INTO demo_categories VALUES
 ('music', 9,
  ARRAY['%s Indie Music Festival','Sunset Sessions: Jazz on the Water','%s Electronic Nights','Outdoor Folk & Bluegrass Weekend',
        '%s Hip-Hop Block Party','Summer Rooftop Concert Series','Country Music Jamboree','Symphony Under the Stars'],
  ARRAY['three stages of live music from emerging and headline artists','an open-air lineup with food trucks and craft bars',
        'late-night sets from touring DJs and local producers','a family-friendly afternoon of acoustic performances',
        'a celebration of the city''s music scene with art installations between stages'],
  ARRAY['festival-goers in their twenties and thirties','music fans who travel for live shows','young professionals and students']),
 ('tech', 7,
  ARRAY['%s AI Summit','Cloud Native Developer Conference','%s Fintech Forum','Cybersecurity Leaders Day',
        'Data & Analytics Summit','%s Startup Expo','Product Management Meetup','Open Source Hack Week'],
  ARRAY['keynotes and hands-on workshops on machine learning in production','talks from engineering leaders on scaling platforms',
        'a startup pavilion with live demos and investor office hours','deep-dive sessions on security, privacy and compliance',
        'a hackathon with prizes for the best open-source contribution'],
  ARRAY['software engineers and engineering managers','founders, investors and product leaders','IT decision makers at mid-size and large companies']),
 ('sports', 6,
  ARRAY['%s City Marathon','%s Cycling Classic','3x3 Basketball Open','Trail Running Weekend','Beach Volleyball Championship',
        'Charity Fun Run 10K','Amateur Football Cup','Triathlon Challenge'],
  ARRAY['thousands of runners on a course through the historic center','a competitive race with an expo for athletes and families',
        'a weekend of tournaments, clinics and fan zones','outdoor endurance events for all levels with recovery lounges',
        'a community race raising money for local charities'],
  ARRAY['active adults who train year-round','families and amateur athletes','fitness enthusiasts and outdoor lovers']),
 ('food_drink', 6,
  ARRAY['%s Craft Beer Festival','Street Food Night Market','Wine & Cheese Tasting Evening','%s Taco Fest','Coffee Roasters Expo',
        'Farm-to-Table Harvest Dinner','Cocktail Week','Barbecue & Blues Cookout'],
  ARRAY['tastings from more than sixty local breweries and distilleries','dozens of food stalls, chef demos and live music',
        'guided tastings with sommeliers and cheesemakers','a celebration of regional cuisine with cooking competitions',
        'roasters, baristas and latte-art championships'],
  ARRAY['food lovers and home cooks','craft beer and spirits enthusiasts aged 25-44','young professionals who dine out weekly']),
 ('arts', 4,
  ARRAY['Contemporary Art Fair','%s Design Week','Photography Biennale','Street Art & Mural Festival','Sculpture in the Park',
        'Gallery Night Walk'],
  ARRAY['works from international galleries and emerging artists','open studios, talks and design installations across the city',
        'large-scale murals painted live over a weekend','curated exhibitions with artist talks and collector previews'],
  ARRAY['art collectors and creative professionals','culture lovers and students','design-minded urban audiences']),
 ('business', 5,
  ARRAY['Startup Pitch Night','Women in Leadership Forum','Marketing Leaders Conference','%s Small Business Expo',
        'Future of Work Summit','Sustainability in Business Forum'],
  ARRAY['founders pitching to a panel of investors and an audience of operators','panels and mentoring sessions with executives',
        'workshops on brand, growth and customer acquisition','an exhibition hall of suppliers and service providers for SMEs'],
  ARRAY['business owners and executives','marketers and agency professionals','mid-career professionals and HR leaders']),
 ('wellness', 3,
  ARRAY['Yoga in the Park','Mindfulness & Meditation Retreat','%s Wellness Expo','Healthy Living Festival','Sunrise Run & Stretch'],
  ARRAY['outdoor classes for all levels with breathwork and sound baths','talks from nutritionists, coaches and therapists',
        'an expo of healthy food, fitness gear and self-care brands'],
  ARRAY['health-conscious adults','women aged 25-54 interested in fitness and self-care','mindfulness and yoga practitioners']),
 ('gaming', 4,
  ARRAY['%s Esports Championship','Indie Games Showcase','Retro Gaming Convention','LAN Party Weekend','Game Developers Meetup'],
  ARRAY['pro teams competing live on the main stage with a streamed final','playable demos from independent studios',
        'tournaments, cosplay contests and a free-play arcade','talks from game designers and publishers'],
  ARRAY['gamers aged 16-34','streamers and esports fans','game developers and students']),
 ('education', 3,
  ARRAY['Science & Innovation Fair','Coding Bootcamp Demo Day','Climate Education Summit','Library Book Festival','STEM Career Day'],
  ARRAY['hands-on exhibits and experiments for students and families','graduates presenting projects to hiring partners',
        'author readings, workshops and book signings','workshops connecting students with employers'],
  ARRAY['students, parents and teachers','career changers and recent graduates','families with school-age children']),
 ('film', 2,
  ARRAY['%s Independent Film Festival','Outdoor Cinema Series','Documentary Week','Short Film Showcase'],
  ARRAY['premieres, director Q&As and industry panels','classic and new films screened under the stars',
        'documentaries on climate, science and society'],
  ARRAY['film buffs and creative professionals','couples and friends looking for a night out','students and culture lovers']);

CREATE TEMP TABLE demo_industries (industry text, nouns text[], categories text[], objectives text[]);
INSERT INTO demo_industries VALUES
 ('Craft beer', ARRAY['Brewing Co.','Brewery','Ales'], ARRAY['music','food_drink','sports'],
  ARRAY['Grow awareness of our seasonal craft beers among adults at live music and outdoor festivals',
        'Drive trial of our IPA through sampling at food and music events']),
 ('Beverages', ARRAY['Beverages','Drinks','Sparkling Water'], ARRAY['sports','music','wellness'],
  ARRAY['Put our zero-sugar drinks in the hands of active people at races and festivals',
        'Sample our energy drink with young adults at sports and gaming events']),
 ('Sportswear', ARRAY['Athletics','Running Co.','Outfitters'], ARRAY['sports','wellness'],
  ARRAY['Reach runners and athletes who train year-round with product trials at races',
        'Build community with amateur athletes through branded fan zones and clinics']),
 ('Fintech', ARRAY['Pay','Finance','Capital'], ARRAY['tech','business'],
  ARRAY['Generate qualified leads among founders and small business owners',
        'Recruit engineers and build our employer brand at developer conferences']),
 ('Consumer electronics', ARRAY['Audio','Electronics','Devices'], ARRAY['music','gaming','tech'],
  ARRAY['Let music and gaming fans try our headphones and speakers in demo lounges',
        'Launch our new laptop to creators and developers']),
 ('Automotive', ARRAY['Motors','Auto Group','EV'], ARRAY['sports','music','business'],
  ARRAY['Offer test drives of our electric vehicles to affluent families',
        'Associate our brand with outdoor adventure and sustainability']),
 ('Telecom', ARRAY['Mobile','Telecom','Connect'], ARRAY['music','sports','gaming'],
  ARRAY['Showcase our 5G network with live streaming at large festivals',
        'Acquire new mobile subscribers among students and young adults']),
 ('Food delivery', ARRAY['Eats','Delivery','Kitchen'], ARRAY['food_drink','music','gaming'],
  ARRAY['Drive app installs with vouchers at food festivals and night markets',
        'Be the official food partner of late-night events']),
 ('Outdoor gear', ARRAY['Outdoors','Gear Co.','Expeditions'], ARRAY['sports','wellness','film'],
  ARRAY['Reach hikers, trail runners and campers at outdoor endurance events',
        'Tell our sustainability story to people who love the outdoors']),
 ('Cosmetics', ARRAY['Beauty','Skincare','Cosmetics'], ARRAY['wellness','arts','music'],
  ARRAY['Introduce our clean skincare line to women aged 25-44 through sampling and pop-ups',
        'Partner with creative events to reach style-conscious audiences']),
 ('Gaming hardware', ARRAY['Gaming','Peripherals','Labs'], ARRAY['gaming','tech'],
  ARRAY['Put our keyboards and mice in front of competitive gamers at tournaments',
        'Sponsor esports teams and streamers to grow our community']),
 ('Banking', ARRAY['Bank','Credit Union','Financial'], ARRAY['business','sports','education'],
  ARRAY['Build trust with families and small businesses in our home region',
        'Promote student accounts at education and career events']),
 ('Airline', ARRAY['Airways','Air','Airlines'], ARRAY['music','film','business'],
  ARRAY['Inspire travel to our new routes among festival-goers and business travelers',
        'Reward loyalty members with premium experiences at cultural events']),
 ('Hospitality', ARRAY['Hotels','Resorts','Stays'], ARRAY['food_drink','wellness','business'],
  ARRAY['Fill weekend hotel rooms around major festivals with bundled packages',
        'Position our resorts as the place to relax and recharge']),
 ('Coffee', ARRAY['Coffee Roasters','Coffee Co.','Espresso'], ARRAY['food_drink','tech','education'],
  ARRAY['Serve our cold brew to developers and students at conferences and fairs',
        'Sample our single-origin beans with food lovers']),
 ('Streaming', ARRAY['Streaming','Media','TV'], ARRAY['film','music','gaming'],
  ARRAY['Promote our original series to film fans and binge watchers',
        'Grow subscriptions among gamers and music fans with exclusive content']),
 ('Education technology', ARRAY['Learning','Academy','EdTech'], ARRAY['education','tech','business'],
  ARRAY['Reach students and career changers looking to learn to code',
        'Partner with schools and science fairs to reach parents and teachers']),
 ('Sustainable fashion', ARRAY['Apparel','Threads','Collective'], ARRAY['arts','music','wellness'],
  ARRAY['Show our circular fashion line to design-minded young adults',
        'Run pop-up shops at art fairs and festivals']);

CREATE TEMP TABLE demo_prefixes (prefix text);
INSERT INTO demo_prefixes SELECT unnest(ARRAY['Lone Star','Northwind','Brightside','Summit','Blue Harbor','Redwood',
  'Silver Creek','Urbanite','Golden Gate','Evergreen','Maple Leaf','Atlas','Nova','Pioneer','Coastal','Ironclad','Velvet',
  'Horizon','Granite','Sunrise','Cedar','Polar','Crescent','Harbor Lights','Wildflower','Copperline','Bluebird','Tidewater',
  'Highline','Riverstone']);

-- helpers -------------------------------------------------------------------------
CREATE FUNCTION pg_temp.pick(a text[]) RETURNS text LANGUAGE sql VOLATILE AS
$$ SELECT a[1 + floor(random() * array_length(a, 1))::int] $$;
CREATE FUNCTION pg_temp.demo_uuid(kind text, n int) RETURNS uuid LANGUAGE sql IMMUTABLE AS
$$ SELECT md5(kind || ':' || n)::uuid $$;

-- Organizations and their members ---------------------------------------------------
INSERT INTO sponsorship.organizations (id, name, created_at)
SELECT pg_temp.demo_uuid('org', n),
       pg_temp.pick(ARRAY['Live','Bright','Open','Grand','Metro','Civic','Harbor','Skyline','Northern','Pacific'])
         || ' ' || pg_temp.pick(ARRAY['Events','Productions','Presents','Collective','Promotions','Festivals','Live Co.'])
         || ' #' || n,
       now() - (random() * 900 || ' days')::interval
  FROM generate_series(1, 60) n;

INSERT INTO sponsorship.org_members (org_id, user_id, role)
SELECT pg_temp.demo_uuid('org', n), pg_temp.demo_uuid('org-user-' || r, n), r
  FROM generate_series(1, 60) n, unnest(ARRAY['owner','admin','editor','viewer']) r;

-- Sponsors, members and profiles -----------------------------------------------------
CREATE TEMP TABLE demo_sponsors AS
SELECT n, pg_temp.demo_uuid('sponsor', n) AS id, i.*
  FROM generate_series(1, 400) n
  CROSS JOIN LATERAL (SELECT * FROM demo_industries ORDER BY random() + n * 0 LIMIT 1) i;

INSERT INTO sponsorship.sponsors (id, name, industry, company_size, website_url, logo_url, contact_email, brand_values, created_at)
SELECT s.id,
       (SELECT prefix FROM demo_prefixes ORDER BY random() + s.n * 0 LIMIT 1) || ' ' || pg_temp.pick(s.nouns)
         || CASE WHEN s.n > 300 THEN ' ' || chr(64 + (s.n % 26) + 1) ELSE '' END,
       s.industry,
       pg_temp.pick(ARRAY['startup','small','medium','medium','large','enterprise']),
       'https://brand' || s.n || '.example.com',
       'https://brand' || s.n || '.example.com/logo.png',
       'partnerships@brand' || s.n || '.example.com',
       to_jsonb(ARRAY[pg_temp.pick(ARRAY['sustainability','community','innovation','inclusion','craftsmanship']),
                      pg_temp.pick(ARRAY['health','adventure','creativity','quality','local pride'])]),
       now() - (random() * 900 || ' days')::interval
  FROM demo_sponsors s;

INSERT INTO sponsorship.sponsor_members (sponsor_id, user_id, role)
SELECT pg_temp.demo_uuid('sponsor', n), pg_temp.demo_uuid('sponsor-user-' || r, n), r
  FROM generate_series(1, 400) n, unnest(ARRAY['owner','editor','viewer']) r;

INSERT INTO sponsorship.sponsor_profiles
       (sponsor_id, industry, annual_budget_cents, currency, brand_objectives, target_audience,
        activation_preferences, preferred_categories, regions)
SELECT s.id, s.industry,
       -- log-uniform between $5k and $2M a year
       (round(exp(ln(500000) + random() * (ln(200000000) - ln(500000))) / 10000) * 10000)::bigint,
       'USD',
       jsonb_build_object(
         'description', pg_temp.pick(s.objectives) || '. ' ||
                        pg_temp.pick(ARRAY['We measure success by qualified leads and brand lift.',
                                           'We want memorable on-site experiences, not just logos.',
                                           'Digital reach and social content matter as much as the venue.',
                                           'We prefer long-term partnerships with recurring events.']),
         'goals', to_jsonb(ARRAY[pg_temp.pick(ARRAY['awareness','lead_generation','sampling','recruiting']),
                                 pg_temp.pick(ARRAY['content','loyalty','sales','community'])])),
       jsonb_build_object(
         'age_segments', (SELECT jsonb_object_agg(seg, share) FROM (
                            SELECT seg, floor((w / sum(w) OVER ())::numeric * 1000) / 1000 AS share
                              FROM (SELECT seg, random() * CASE seg WHEN '25-34' THEN 2.0 WHEN '18-24' THEN 1.5 ELSE 1 END AS w
                                      FROM unnest(ARRAY['18-24','25-34','35-44','45-54','55+']) seg
                                     WHERE s.n > 0) a) b),
         'interests', to_jsonb(s.categories[1:2]),
         'regions', '[]'::jsonb),
       jsonb_build_object('formats', to_jsonb(ARRAY[pg_temp.pick(ARRAY['sampling','booth','naming rights','digital','hospitality'])]),
                          'package_types', to_jsonb(ARRAY[pg_temp.pick(ARRAY['onsite','digital','hybrid'])])),
       s.categories[1:1 + floor(random() * 3)::int],
       CASE WHEN random() < 0.1 THEN ARRAY['global']
            WHEN random() < 0.35 THEN ARRAY(SELECT DISTINCT country FROM demo_cities ORDER BY country LIMIT 1 OFFSET floor(random() * 9)::int)
            ELSE ARRAY(SELECT city FROM demo_cities ORDER BY random() + s.n * 0 LIMIT 1 + floor(random() * 3)::int) END
  FROM demo_sponsors s;

UPDATE sponsorship.sponsor_profiles
   SET target_audience = jsonb_set(target_audience, '{regions}', to_jsonb(regions));

-- Events ---------------------------------------------------------------------------
CREATE TEMP TABLE demo_events AS
SELECT n,
       pg_temp.demo_uuid('event', n) AS id,
       pg_temp.demo_uuid('org', 1 + floor(random() * 60)::int) AS org_id,
       c.*, cat.category, cat.titles,
       pg_temp.pick(cat.titles) AS title_tpl, pg_temp.pick(cat.hooks) AS hook1,
       pg_temp.pick(cat.hooks) AS hook2, pg_temp.pick(cat.audience) AS audience,
       now() + ((random() * 600 - 300) || ' days')::interval AS start_at,
       round(exp(ln(150) + random() * (ln(60000) - ln(150))))::int AS capacity,
       random() AS r_vis
  FROM generate_series(1, 3000) n
  CROSS JOIN LATERAL (SELECT * FROM demo_cities ORDER BY -ln(1 - random()) / weight + n * 0 LIMIT 1) c
  CROSS JOIN LATERAL (SELECT * FROM demo_categories ORDER BY -ln(1 - random()) / weight + n * 0 LIMIT 1) cat;

INSERT INTO sponsorship.events
       (id, org_id, title, description, category, city, country, lat, lng, start_at, end_at, visibility, capacity, created_at)
SELECT e.id, e.org_id,
       format(e.title_tpl, e.city) || ' ' || to_char(e.start_at, 'YYYY'),
       format('%s brings %s to %s.%s The audience is mostly %s, and organizers expect around %s attendees. %s',
              format(e.title_tpl, e.city), e.hook1, e.city,
              CASE WHEN e.hook2 <> e.hook1 THEN ' Also on the program: ' || e.hook2 || '.' ELSE '' END,
              e.audience, e.capacity,
              pg_temp.pick(ARRAY['Sponsors can activate with branded lounges, sampling and stage naming rights.',
                                 'Partners get on-site booths, social media features and email campaigns to ticket holders.',
                                 'Digital packages include livestream overlays and newsletter placements.',
                                 'Hospitality packages include VIP passes and private meet-and-greets.'])),
       e.category, e.city, e.country,
       e.lat + (random() - 0.5) * 0.1, e.lng + (random() - 0.5) * 0.1,
       e.start_at, e.start_at + ((1 + floor(random() * 3)) || ' days')::interval - interval '6 hours',
       CASE WHEN e.r_vis < 0.85 THEN 'public' WHEN e.r_vis < 0.95 THEN 'unlisted' ELSE 'private' END,
       e.capacity,
       LEAST(now(), e.start_at) - ((30 + random() * 180) || ' days')::interval
  FROM demo_events e;

-- Measured audiences (90% of events have insights)
INSERT INTO sponsorship.event_audience_insights
       (event_id, attendee_count, avg_dwell_time_ms, geo_distribution, age_segments, engagement_score,
        ticket_conversion_rate, social_mentions, sentiment_score)
SELECT e.id,
       round(e.capacity * (0.35 + random() * 0.6))::int,
       round((20 + random() * 160) * 60000)::bigint,
       jsonb_build_object(e.city, round((0.5 + random() * 0.3)::numeric, 3),
                          'Elsewhere in ' || e.country, round((0.05 + random() * 0.1)::numeric, 3),
                          'International', round((random() * 0.05)::numeric, 3)),
       (SELECT jsonb_object_agg(seg, share) FROM (
          SELECT seg, floor((w / sum(w) OVER ())::numeric * 1000) / 1000 AS share
            FROM (SELECT seg, random() * CASE WHEN e.category IN ('gaming','music') AND seg IN ('18-24','25-34') THEN 3
                                              WHEN e.category IN ('business','arts') AND seg IN ('35-44','45-54') THEN 2.5
                                              ELSE 1 END AS w
                    FROM unnest(ARRAY['18-24','25-34','35-44','45-54','55+']) seg WHERE e.n > 0) a) b),
       round((20 + random() * 78)::numeric, 3),
       round((0.01 + random() * 0.22)::numeric, 6),
       round(exp(random() * ln(20000)))::int,
       round((random() * 1.2 - 0.3)::numeric, 3)
  FROM demo_events e
 WHERE random() < 0.9;

INSERT INTO sponsorship.event_stat_snapshots (event_id, metric_key, metric_value, captured_at)
SELECT i.event_id, k, CASE k WHEN 'attendee_count' THEN i.attendee_count * (0.5 + d / 8.0)
                              ELSE i.social_mentions * (0.3 + d / 6.0) END,
       now() - ((4 - d) * 7 || ' days')::interval
  FROM sponsorship.event_audience_insights i, unnest(ARRAY['attendee_count','social_mentions']) k, generate_series(1, 4) d
 WHERE i.event_id IN (SELECT id FROM demo_events WHERE n % 5 = 0);

-- Packages: 2 to 4 tiers per event, priced by audience size, in the event's currency
INSERT INTO sponsorship.sponsorship_packages
       (event_id, tier, title, description, price_cents, currency, inventory, sold, benefits, package_type,
        expected_reach, is_active, visibility)
SELECT e.id, t.tier, initcap(t.tier) || ' Partner',
       'The ' || t.tier || ' package: ' || t.benefits_text,
       (round(GREATEST(50000, e.capacity * t.per_head_cents * (0.7 + random() * 0.6)) * fx.per_usd_cent / 100) * 100)::bigint,
       e.currency, t.inventory, 0,
       to_jsonb(string_to_array(t.benefits_text, ', ')),
       t.package_type,
       round(e.capacity * t.reach_factor * (0.8 + random() * 0.4))::int,
       random() < 0.95, 'public'
  FROM demo_events e
  JOIN demo_fx fx ON fx.currency = e.currency
  CROSS JOIN LATERAL (
        SELECT * FROM (VALUES
          (1, 'title',  900, 1, 'hybrid',  6.0, 'stage naming rights, logo on all tickets, 20 VIP passes, keynote mention'),
          (2, 'gold',   400, 2, 'onsite',  3.0, 'premium booth, 10 VIP passes, social media feature'),
          (3, 'silver', 150, 4, 'hybrid',  2.0, 'booth, logo on website, newsletter placement'),
          (4, 'bronze',  50, 8, 'digital', 1.5, 'logo on website, social media mention')
        ) v(rank, tier, per_head_cents, inventory, package_type, reach_factor, benefits_text)
         WHERE v.rank <= 2 + (e.n % 3)) t;

-- Orders: sold units of packages, plus some pending and cancelled requests ----------
CREATE TEMP TABLE demo_orders AS
SELECT p.id AS package_id, p.event_id, p.price_cents, p.currency, e.start_at,
       pg_temp.demo_uuid('sponsor', 1 + floor(random() * 400)::int) AS sponsor_id,
       u AS unit, random() AS r
  FROM sponsorship.sponsorship_packages p
  JOIN sponsorship.events e ON e.id = p.event_id
  CROSS JOIN LATERAL generate_series(1, p.inventory) u
 WHERE random() < 0.18;

INSERT INTO sponsorship.sponsorship_orders
       (package_id, sponsor_id, event_id, amount_cents, currency, status, stripe_payment_intent_id,
        stripe_charge_id, review_score, paid_at, created_at)
SELECT o.package_id, o.sponsor_id, o.event_id, o.price_cents, o.currency, st.status,
       CASE WHEN st.paid THEN 'pi_' || substr(md5(o.package_id::text || o.unit), 1, 24) END,
       CASE WHEN st.paid THEN 'ch_' || substr(md5(o.package_id::text || o.unit || 'charge'), 1, 24) END,
       CASE WHEN st.status = 'completed' AND o.r < 0.85 THEN 3 + floor(o.r * 10)::int % 3 END,
       CASE WHEN st.paid THEN LEAST(now(), o.start_at) - interval '20 days' END,
       LEAST(now(), o.start_at) - ((25 + o.r * 60) || ' days')::interval
  FROM demo_orders o
  CROSS JOIN LATERAL (
        SELECT CASE WHEN o.start_at < now() THEN
                    CASE WHEN o.r < 0.80 THEN 'completed' WHEN o.r < 0.86 THEN 'refunded' ELSE 'cancelled' END
               ELSE CASE WHEN o.r < 0.25 THEN 'pending' WHEN o.r < 0.65 THEN 'accepted'
                         WHEN o.r < 0.80 THEN 'live' ELSE 'cancelled' END
               END AS status) s
  CROSS JOIN LATERAL (SELECT s.status, s.status IN ('accepted','live','completed','refunded') AS paid) st;

UPDATE sponsorship.sponsorship_packages p
   SET sold = LEAST(p.inventory, x.n)
  FROM (SELECT package_id, count(*) AS n FROM sponsorship.sponsorship_orders
         WHERE status IN ('accepted','live','completed') GROUP BY package_id) x
 WHERE x.package_id = p.id;

INSERT INTO sponsorship.event_sponsorships (order_id, event_id, sponsor_id, status, deliverables, started_at, completed_at)
SELECT o.id, o.event_id, o.sponsor_id,
       CASE o.status WHEN 'accepted' THEN 'draft' WHEN 'live' THEN 'live' ELSE 'completed' END,
       to_jsonb(ARRAY['logo placement', 'social post', 'booth']),
       -- live from a few weeks before the event (promotion), completed two days after it
       CASE WHEN o.status IN ('live','completed')
            THEN (SELECT start_at FROM sponsorship.events WHERE id = o.event_id) - ((7 + floor(random() * 28)) || ' days')::interval END,
       CASE WHEN o.status = 'completed' THEN (SELECT end_at FROM sponsorship.events WHERE id = o.event_id) + interval '2 days' END
  FROM sponsorship.sponsorship_orders o
 WHERE o.status IN ('accepted','live','completed');

-- Payout settings: most organizers are connected to Stripe ---------------------------
INSERT INTO sponsorship.payout_configurations
       (org_id, stripe_connect_account_id, platform_fee_bps, minimum_payout_cents, payout_schedule, auto_payout_enabled)
SELECT pg_temp.demo_uuid('org', n),
       'acct_' || substr(md5('acct' || n), 1, 16),
       CASE WHEN n % 5 = 0 THEN 800 WHEN n % 7 = 0 THEN 1200 END,
       CASE WHEN n % 3 = 0 THEN 10000 ELSE 0 END,
       (ARRAY['manual','daily','weekly','monthly'])[1 + n % 4],
       n % 2 = 0
  FROM generate_series(1, 60) n
 WHERE n % 10 <> 0;

-- Raw facts: impressions and ticket sales over the last eleven months ---------------
INSERT INTO sponsorship.event_impressions (event_id, sponsor_id, source, kind, dwell_ms, created_at)
SELECT e.id,
       CASE WHEN random() < 0.2 THEN pg_temp.demo_uuid('sponsor', 1 + floor(random() * 400)::int) END,
       (ARRAY['web','web','app','app','email','social','onsite','partner'])[1 + floor(random() * 8)::int],
       CASE WHEN random() < 0.85 THEN 'view' WHEN random() < 0.8 THEN 'click' ELSE 'engagement' END,
       floor(random() * 120000)::int,
       now() - (random() * 330 || ' days')::interval
  FROM (SELECT g, 1 + floor(power(random(), 1.6) * 3000)::int AS en FROM generate_series(1, 200000) g) r
  JOIN demo_events e ON e.n = r.en;

INSERT INTO sponsorship.ticket_analytics (event_id, sponsor_id, channel, tickets, revenue_cents, currency, created_at)
SELECT e.id,
       CASE WHEN ch = 'sponsor' THEN pg_temp.demo_uuid('sponsor', 1 + floor(random() * 400)::int) END,
       ch, t, (t * round((1500 + random() * 15000) * fx.per_usd_cent))::bigint, e.currency,
       now() - (random() * 330 || ' days')::interval
  FROM (SELECT g, 1 + floor(power(random(), 1.4) * 3000)::int AS en FROM generate_series(1, 60000) g) r
  JOIN demo_events e ON e.n = r.en
  JOIN demo_fx fx ON fx.currency = e.currency
  CROSS JOIN LATERAL (SELECT (ARRAY['direct','direct','social','email','sponsor','partner','box_office'])[1 + floor(random() * 7)::int] AS ch,
                             1 + floor(random() * 4)::int AS t WHERE r.g > 0) x;

-- Measured placements of completed activations (for the ROI evaluation): who saw the
-- sponsor's placement (a pseudonymous viewer key), clicks, engagements, dwell and completed
-- videos, over the activation's live period, plus the ticket-page views and sales the
-- sponsor referred. Loaded for activations whose package promised up to 3,000 people
-- (about a million rows); larger ones have no placement data in this demo.
CREATE TEMP TABLE demo_measured AS
SELECT es.id, es.event_id, es.sponsor_id, es.started_at, es.completed_at, p.expected_reach, p.package_type,
       e.currency, fx.per_usd_cent,
       -- how well the event delivered: most near the promise, some far off either way
       GREATEST(1, round(p.expected_reach * (0.75 + random() * 0.85)))::int AS people,
       row_number() OVER (ORDER BY es.id) AS k
  FROM sponsorship.event_sponsorships es
  JOIN sponsorship.sponsorship_orders o ON o.id = es.order_id
  JOIN sponsorship.sponsorship_packages p ON p.id = o.package_id
  JOIN demo_events e ON e.id = es.event_id
  JOIN demo_fx fx ON fx.currency = e.currency
 WHERE es.status = 'completed' AND p.expected_reach BETWEEN 1 AND 3000;

INSERT INTO sponsorship.event_impressions
       (event_id, sponsor_id, source, kind, dwell_ms, viewer_key, completed, created_at)
SELECT m.event_id, m.sponsor_id,
       CASE m.package_type WHEN 'onsite' THEN 'onsite' ELSE (ARRAY['web','app','email','social','onsite'])[1 + floor(random() * 5)::int] END,
       CASE WHEN r.x < 0.88 THEN 'view' WHEN r.x < 0.96 THEN 'click' ELSE 'engagement' END,
       CASE WHEN random() < 0.8 THEN floor(random() * random() * 90000)::int END,
       -- a visitor id the platform hashed; 5% of views come from visitors it could not identify
       CASE WHEN random() < 0.95 THEN 'v' || m.k || '-' || floor(random() * m.people)::int END,
       CASE WHEN m.package_type <> 'onsite' AND random() < 0.3 THEN random() < 0.45 END,
       m.started_at + random() * (m.completed_at - m.started_at)
  FROM demo_measured m
  CROSS JOIN LATERAL generate_series(1, round(m.people * 1.6)::int) g
  CROSS JOIN LATERAL (SELECT random() AS x WHERE g > 0) r;

INSERT INTO sponsorship.ticket_analytics (event_id, sponsor_id, channel, views, tickets, revenue_cents, currency, created_at)
SELECT m.event_id, m.sponsor_id, 'sponsor', v.views, v.tickets,
       (v.tickets * round((1500 + random() * 15000) * m.per_usd_cent))::bigint, m.currency,
       m.started_at + random() * (m.completed_at - m.started_at)
  FROM demo_measured m
  CROSS JOIN LATERAL generate_series(1, 6) d
  CROSS JOIN LATERAL (SELECT 1 + floor(random() * m.people / 40)::int AS views WHERE d > 0) w
  CROSS JOIN LATERAL (SELECT w.views, floor(w.views * random() * 0.25)::int AS tickets) v;

COMMIT;

ANALYZE;
SELECT sponsorship.refresh_event_quality_scores() AS quality_rows \gset
