//! Helpers shared by the out-of-process tests: each test gets its own database on the
//! cluster that `scripts/test.sh` starts (SPONSORSHIP_TEST_PGHOST / SPONSORSHIP_TEST_PGPORT),
//! with the installed extension created in it, and drops it afterwards.

use std::sync::atomic::{AtomicUsize, Ordering};

pub use postgres::{Client, NoTls, Row};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn conn_string(db: &str) -> String {
    let host = std::env::var("SPONSORSHIP_TEST_PGHOST").unwrap_or_else(|_| {
        panic!("SPONSORSHIP_TEST_PGHOST is not set: run the tests through scripts/test.sh, which starts the cluster")
    });
    let port = std::env::var("SPONSORSHIP_TEST_PGPORT").unwrap_or_else(|_| "5432".into());
    format!("host={host} port={port} user=postgres dbname={db}")
}

pub fn connect(db: &str) -> Client {
    Client::connect(&conn_string(db), NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to {db}: {e}"))
}

/// A database of its own for one test; dropped (with its connections) when the value is.
pub struct TestDb {
    pub name: String,
    pub client: Client,
}

impl TestDb {
    /// A new empty database.
    pub fn empty(label: &str) -> TestDb {
        let name = format!(
            "t_{}_{}_{}",
            label,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin = connect("postgres");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .expect("drop a leftover test database");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        let client = connect(&name);
        TestDb { name, client }
    }

    /// A new database with `CREATE EXTENSION sponsorship CASCADE` done.
    pub fn with_extension(label: &str) -> TestDb {
        let mut db = TestDb::empty(label);
        db.client
            .batch_execute(
                "SET client_min_messages = warning; CREATE EXTENSION sponsorship CASCADE",
            )
            .expect("CREATE EXTENSION sponsorship CASCADE");
        db
    }

    /// Another connection to the same database.
    pub fn connect(&self) -> Client {
        connect(&self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let mut admin = connect("postgres");
        let _ = admin.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// The SQLSTATE of a failed statement, e.g. "23514".
pub fn sqlstate(err: &postgres::Error) -> String {
    err.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("not a database error: {err}"))
}

/// Runs `sql`, expects it to fail with `state`, and returns the error message.
pub fn expect_error(client: &mut Client, sql: &str, state: &str) -> String {
    match client.batch_execute(sql) {
        Ok(()) => panic!("expected SQLSTATE {state}, but this succeeded:\n{sql}"),
        Err(e) => {
            assert_eq!(sqlstate(&e), state, "unexpected error for:\n{sql}\n{e:?}");
            e.as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_default()
        }
    }
}

pub fn scalar_i64(client: &mut Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get::<_, i64>(0)
}

pub fn scalar_bool(client: &mut Client, sql: &str) -> bool {
    client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get::<_, bool>(0)
}

pub fn scalar_string(client: &mut Client, sql: &str) -> String {
    client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get::<_, String>(0)
}
