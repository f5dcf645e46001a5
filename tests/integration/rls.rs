//! Row level security: each kind of caller sees and changes exactly what SPEC §8 allows.
use sponsorship_integration_tests::*;

const ORG_A: &str = "00000000-0000-0000-0000-00000000000a";
const ORG_B: &str = "00000000-0000-0000-0000-00000000000b";
const SPONSOR_1: &str = "00000000-0000-0000-0000-0000000000b1";
const SPONSOR_2: &str = "00000000-0000-0000-0000-0000000000b2";
const A_VIEWER: &str = "10000000-0000-0000-0000-000000000001";
const A_ADMIN: &str = "10000000-0000-0000-0000-000000000002";
const A_EDITOR: &str = "10000000-0000-0000-0000-000000000003";
const S1_OWNER: &str = "20000000-0000-0000-0000-000000000001";
const STRANGER: &str = "30000000-0000-0000-0000-000000000001";

fn marketplace() -> TestDb {
    let mut db = TestDb::with_extension("rls");
    db.client
        .batch_execute(&format!(
            "INSERT INTO sponsorship.organizations (id, name) VALUES ('{ORG_A}', 'Org A'), ('{ORG_B}', 'Org B');
             INSERT INTO sponsorship.org_members (org_id, user_id, role) VALUES
               ('{ORG_A}', '{A_VIEWER}', 'viewer'), ('{ORG_A}', '{A_ADMIN}', 'admin'), ('{ORG_A}', '{A_EDITOR}', 'editor');
             INSERT INTO sponsorship.events (id, org_id, title, start_at, visibility) VALUES
               ('00000000-0000-0000-0000-0000000000a1', '{ORG_A}', 'A public', now() + interval '1 day', 'public'),
               ('00000000-0000-0000-0000-0000000000a2', '{ORG_A}', 'A private', now() + interval '1 day', 'private'),
               ('00000000-0000-0000-0000-0000000000a3', '{ORG_A}', 'A unlisted', now() + interval '1 day', 'unlisted'),
               ('00000000-0000-0000-0000-0000000000b1', '{ORG_B}', 'B public', now() + interval '1 day', 'public'),
               ('00000000-0000-0000-0000-0000000000b2', '{ORG_B}', 'B private', now() + interval '1 day', 'private');
             INSERT INTO sponsorship.event_audience_insights (event_id, attendee_count)
             SELECT id, 100 FROM sponsorship.events;
             INSERT INTO sponsorship.sponsorship_packages (id, event_id, title, price_cents) VALUES
               ('00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000a1', 'A gold', 100000),
               ('00000000-0000-0000-0000-0000000000f2', '00000000-0000-0000-0000-0000000000b1', 'B gold', 200000);
             INSERT INTO sponsorship.sponsors (id, name) VALUES ('{SPONSOR_1}', 'Brand 1'), ('{SPONSOR_2}', 'Brand 2');
             INSERT INTO sponsorship.sponsor_members (sponsor_id, user_id, role) VALUES ('{SPONSOR_1}', '{S1_OWNER}', 'owner');
             INSERT INTO sponsorship.sponsor_profiles (sponsor_id, annual_budget_cents) VALUES
               ('{SPONSOR_1}', 1000000), ('{SPONSOR_2}', 2000000);
             INSERT INTO sponsorship.sponsorship_orders (package_id, sponsor_id, event_id, amount_cents) VALUES
               ('00000000-0000-0000-0000-0000000000f1', '{SPONSOR_1}', '00000000-0000-0000-0000-0000000000a1', 100000),
               ('00000000-0000-0000-0000-0000000000f2', '{SPONSOR_1}', '00000000-0000-0000-0000-0000000000b1', 200000),
               ('00000000-0000-0000-0000-0000000000f2', '{SPONSOR_2}', '00000000-0000-0000-0000-0000000000b1', 200000);
             INSERT INTO sponsorship.payout_configurations (org_id, stripe_connect_account_id, platform_fee_bps) VALUES
               ('{ORG_A}', 'acct_A', 1000), ('{ORG_B}', 'acct_B', 900);
             SELECT sponsorship.refresh_event_quality_scores();"
        ))
        .unwrap();
    db
}


fn count(client: &mut Client, table: &str) -> i64 {
    scalar_i64(client, &format!("SELECT count(*) FROM sponsorship.{table}"))
}

fn titles(client: &mut Client) -> Vec<String> {
    client
        .query("SELECT title FROM sponsorship.events ORDER BY title", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn anon_sees_public_marketplace_data_only() {
    let mut db = marketplace();
    let c = &mut db.client;
    act_as(c, "anon", None);
    assert_eq!(titles(c), vec!["A public", "B public"]);
    assert_eq!(
        count(c, "event_audience_insights"),
        2,
        "insights of public events only"
    );
    assert_eq!(count(c, "sponsorship_packages"), 2);
    assert_eq!(count(c, "sponsors"), 2);
    assert_eq!(count(c, "v_event_marketplace"), 2);
    assert_eq!(count(c, "v_sponsorship_package_cards"), 2);
    assert_eq!(count(c, "v_sponsor_marketplace"), 2);
    assert_eq!(
        count(c, "event_quality_scores"),
        2,
        "quality scores of public events only"
    );
    for table in [
        "sponsorship_orders",
        "payout_configurations",
        "fit_recalc_queue",
        "org_members",
        "mv_event_quality_scores",
    ] {
        expect_error(c, &format!("SELECT * FROM sponsorship.{table}"), "42501");
    }
    expect_error(
        c,
        &format!("INSERT INTO sponsorship.events (org_id, title, start_at) VALUES ('{ORG_A}', 'x', now())"),
        "42501",
    );
}

#[test]
fn a_signed_in_stranger_sees_what_anon_sees_and_can_change_nothing() {
    let mut db = marketplace();
    let c = &mut db.client;
    act_as(c, "authenticated", Some(STRANGER));
    assert_eq!(titles(c), vec!["A public", "B public"]);
    assert_eq!(count(c, "sponsorship_orders"), 0);
    assert_eq!(count(c, "payout_configurations"), 0);
    assert_eq!(count(c, "sponsorship_payouts"), 0);
    let updated = c
        .execute("UPDATE sponsorship.events SET title = 'hijacked'", &[])
        .unwrap();
    assert_eq!(updated, 0);
    let updated = c
        .execute(
            "UPDATE sponsorship.sponsor_profiles SET annual_budget_cents = 1",
            &[],
        )
        .unwrap();
    assert_eq!(updated, 0);
    // authenticated without a usable sub is a stranger too
    act_as(c, "authenticated", Some("not-a-uuid"));
    assert_eq!(titles(c), vec!["A public", "B public"]);
}

#[test]
fn an_org_viewer_sees_the_orgs_private_events_and_deals_but_not_money_settings() {
    let mut db = marketplace();
    let c = &mut db.client;
    act_as(c, "authenticated", Some(A_VIEWER));
    assert_eq!(
        titles(c),
        vec!["A private", "A public", "A unlisted", "B public"]
    );
    assert_eq!(
        count(c, "sponsorship_orders"),
        1,
        "the one order on Org A's event"
    );
    assert_eq!(
        count(c, "payout_configurations"),
        0,
        "payout settings are for admins"
    );
    assert_eq!(count(c, "event_quality_scores"), 4);
    expect_error(c, "SELECT * FROM sponsorship.fit_recalc_queue", "42501");
    // a viewer cannot edit
    let updated = c
        .execute(
            &format!("UPDATE sponsorship.events SET title = 'edited' WHERE org_id = '{ORG_A}'"),
            &[],
        )
        .unwrap();
    assert_eq!(updated, 0);
    expect_error(
        c,
        &format!("INSERT INTO sponsorship.events (org_id, title, start_at) VALUES ('{ORG_A}', 'x', now())"),
        "42501",
    );
}

#[test]
fn an_org_editor_edits_the_orgs_events_but_not_its_fee() {
    let mut db = marketplace();
    let c = &mut db.client;
    act_as(c, "authenticated", Some(A_EDITOR));
    let updated = c
        .execute(
            &format!("UPDATE sponsorship.events SET title = title || '!' WHERE org_id = '{ORG_A}'"),
            &[],
        )
        .unwrap();
    assert_eq!(updated, 3);
    let updated = c
        .execute(
            &format!("UPDATE sponsorship.events SET title = 'x' WHERE org_id = '{ORG_B}'"),
            &[],
        )
        .unwrap();
    assert_eq!(updated, 0, "another organization's events are not editable");
    let updated = c
        .execute(
            "UPDATE sponsorship.payout_configurations SET payout_schedule = 'daily'",
            &[],
        )
        .unwrap();
    assert_eq!(updated, 0, "an editor cannot change payout settings");
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.events (org_id, title, start_at) VALUES ('{ORG_A}', 'New A event', now())"
    ))
    .unwrap();
}

#[test]
fn an_org_admin_manages_the_orgs_payout_settings_only() {
    let mut db = marketplace();
    let c = &mut db.client;
    act_as(c, "authenticated", Some(A_ADMIN));
    assert_eq!(count(c, "payout_configurations"), 1);
    let updated = c
        .execute(
            "UPDATE sponsorship.payout_configurations SET payout_schedule = 'weekly', minimum_payout_cents = 850",
            &[],
        )
        .unwrap();
    assert_eq!(updated, 1, "only Org A's settings");
    // the platform's fee is the platform's: only the service role sets an organization's rate
    for col in ["platform_fee_bps = 1", "min_fee_cents = 0", "max_fee_cents = 1"] {
        expect_error(c, &format!("UPDATE sponsorship.payout_configurations SET {col}"), "42501");
    }
    expect_error(
        c,
        &format!("INSERT INTO sponsorship.payout_configurations (org_id, platform_fee_bps) VALUES ('{ORG_A}', 0)"),
        "42501",
    );
    c.batch_execute("RESET ROLE").unwrap();
    let rows: Vec<(String, i64, i32)> = c
        .query(
            "SELECT payout_schedule, minimum_payout_cents, platform_fee_bps FROM sponsorship.payout_configurations ORDER BY org_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows, vec![("weekly".into(), 850, 1000), ("manual".into(), 0, 900)]);
    // an admin cannot make someone an owner (above their own role)
    act_as(c, "authenticated", Some(A_ADMIN));
    expect_error(
        c,
        &format!("INSERT INTO sponsorship.org_members (org_id, user_id, role) VALUES ('{ORG_A}', '{STRANGER}', 'owner')"),
        "42501",
    );
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.org_members (org_id, user_id, role) VALUES ('{ORG_A}', '{STRANGER}', 'editor')"
    ))
    .unwrap();
}

#[test]
fn a_sponsor_member_sees_its_own_orders_and_edits_its_own_profile() {
    let mut db = marketplace();
    let c = &mut db.client;
    act_as(c, "authenticated", Some(S1_OWNER));
    assert_eq!(
        count(c, "sponsorship_orders"),
        2,
        "both of Brand 1's orders, none of Brand 2's"
    );
    assert_eq!(count(c, "payout_configurations"), 0);
    assert_eq!(titles(c), vec!["A public", "B public"]);
    let updated = c
        .execute(
            "UPDATE sponsorship.sponsor_profiles SET annual_budget_cents = 5",
            &[],
        )
        .unwrap();
    assert_eq!(updated, 1, "only its own profile");
    // sponsors cannot write the money columns of an order
    expect_error(
        c,
        "UPDATE sponsorship.sponsorship_orders SET application_fee_cents = 0",
        "42501",
    );
    // and can place an order only as pending
    expect_error(
        c,
        &format!(
            "INSERT INTO sponsorship.sponsorship_orders (package_id, sponsor_id, event_id, amount_cents)
             VALUES ('00000000-0000-0000-0000-0000000000f1', '{SPONSOR_2}', '00000000-0000-0000-0000-0000000000a1', 100000)"
        ),
        "42501",
    );
    c.batch_execute(&format!(
        "INSERT INTO sponsorship.sponsorship_orders (package_id, sponsor_id, event_id, amount_cents)
         VALUES ('00000000-0000-0000-0000-0000000000f1', '{SPONSOR_1}', '00000000-0000-0000-0000-0000000000a1', 100000)"
    ))
    .unwrap();
}

#[test]
fn creating_an_organization_makes_the_creator_its_owner() {
    let mut db = marketplace();
    let c = &mut db.client;
    act_as(c, "authenticated", Some(STRANGER));
    c.batch_execute(
        "INSERT INTO sponsorship.organizations (id, name) VALUES ('00000000-0000-0000-0000-0000000000cc', 'Mine')",
    )
    .unwrap();
    assert_eq!(
        scalar_string(
            c,
            "SELECT role FROM sponsorship.org_members WHERE org_id = '00000000-0000-0000-0000-0000000000cc'"
        ),
        "owner"
    );
    let updated = c
        .execute("UPDATE sponsorship.organizations SET name = 'Mine, renamed' WHERE id = '00000000-0000-0000-0000-0000000000cc'", &[])
        .unwrap();
    assert_eq!(updated, 1);
}

#[test]
fn the_service_role_sees_everything_including_queues() {
    let mut db = marketplace();
    let c = &mut db.client;
    act_as(c, "service_role", None);
    assert_eq!(count(c, "events"), 5);
    assert_eq!(count(c, "sponsorship_orders"), 3);
    assert_eq!(count(c, "payout_configurations"), 2);
    assert_eq!(
        count(c, "fit_recalc_queue"),
        7,
        "5 events and 2 sponsor profiles were queued by the triggers"
    );
    assert_eq!(count(c, "mv_event_quality_scores"), 5);
    assert_eq!(count(c, "event_quality_scores"), 5);
    assert_eq!(
        scalar_i64(c, "SELECT sponsorship.refresh_event_quality_scores()"),
        5
    );
}
