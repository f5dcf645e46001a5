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

    /// Another connection whose NOTICE (and lower) messages are collected in the returned
    /// list, in order.
    pub fn connect_collecting_notices(&self) -> (Client, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = notices.clone();
        let mut config: postgres::Config = conn_string(&self.name).parse().expect("connection string");
        config.notice_callback(move |n| sink.lock().unwrap().push(n.message().to_string()));
        let client = config
            .connect(NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.name));
        (client, notices)
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

/// Switches the session to `role` acting as `user` (the `sub` claim), as PostgREST does.
pub fn act_as(client: &mut Client, role: &str, user: Option<&str>) {
    let claims = match user {
        Some(u) => format!("{{\"sub\": \"{u}\", \"role\": \"{role}\"}}"),
        None => format!("{{\"role\": \"{role}\"}}"),
    };
    client
        .batch_execute(&format!(
            "RESET ROLE; SELECT set_config('request.jwt.claims', '{claims}', false); SET ROLE {role};"
        ))
        .unwrap();
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

/// The scripted fake Stripe server (tests/fake_stripe/fake_stripe.py), on 127.0.0.1, for as
/// long as the value lives.
pub struct FakeStripe {
    child: std::process::Child,
    pub port: u16,
    pub key: String,
}

/// The secret key the test cluster's payout processes use (scripts/test.sh sets it).
pub const TEST_STRIPE_KEY: &str = "sk_test_sponsorshipTests0123456789";

impl FakeStripe {
    pub fn start() -> FakeStripe {
        FakeStripe::start_with_key(TEST_STRIPE_KEY)
    }

    pub fn start_with_key(key: &str) -> FakeStripe {
        use std::io::BufRead;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fake_stripe/fake_stripe.py");
        let mut child = std::process::Command::new("python3")
            .args([script, "--port", "0", "--key", key])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the fake Stripe server (python3)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the fake Stripe server's first line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        FakeStripe { child, port, key: key.to_string() }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One HTTP request to the fake; returns (status, body as JSON or Null).
    pub fn http(&self, method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the fake");
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).expect("send");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read");
        let text = String::from_utf8_lossy(&raw);
        let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let json = text
            .split_once("\r\n\r\n")
            .and_then(|(_, b)| serde_json::from_str(b).ok())
            .unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    /// Appends fault rules (see tests/fake_stripe/README.md).
    pub fn script(&self, rules: serde_json::Value) {
        let body = serde_json::json!({ "rules": rules }).to_string();
        let (status, reply) = self.http("POST", "/__control/script", &body, &[("Content-Type", "application/json")]);
        assert_eq!(status, 200, "script rejected: {reply}");
    }

    pub fn latency(&self, ms: u64) {
        let body = serde_json::json!({ "ms": ms }).to_string();
        assert_eq!(self.http("POST", "/__control/latency", &body, &[("Content-Type", "application/json")]).0, 200);
    }

    /// Every transfer the fake created.
    pub fn transfers(&self) -> Vec<serde_json::Value> {
        let (_, v) = self.http("GET", "/__control/transfers", "", &[]);
        v.as_array().cloned().or_else(|| v["transfers"].as_array().cloned()).unwrap_or_default()
    }

    /// The request log.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let (_, v) = self.http("GET", "/__control/requests", "", &[]);
        v.as_array().cloned().or_else(|| v["requests"].as_array().cloned()).unwrap_or_default()
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cluster of a test's own (for tests that crash the server on purpose), initialized and
/// run as the postgres user with the extension preloaded; stopped and removed on drop.
pub struct OwnCluster {
    pub dir: std::path::PathBuf,
    pub port: u16,
}

fn pg_bin(tool: &str) -> String {
    let major = std::env::var("PG_MAJOR").unwrap_or_else(|_| "15".into());
    format!("/usr/lib/postgresql/{major}/bin/{tool}")
}

fn as_postgres(args: &[&str]) -> std::process::Output {
    std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .expect("runuser")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port()
}

impl OwnCluster {
    /// `conf`: extra postgresql.conf lines. The cluster's payout passes get the tests' Stripe
    /// key (`TEST_STRIPE_KEY`) from a key file.
    pub fn start(label: &str, conf: &str) -> OwnCluster {
        let dir = std::path::PathBuf::from(format!("/tmp/sponsorship-own-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::process::Command::new("chown").args(["postgres:postgres", dir.to_str().unwrap()]).status().unwrap();
        let data = dir.join("data");
        let out = as_postgres(&[&pg_bin("initdb"), "-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                                "--locale=C.UTF-8"]);
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let mut cfg = std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf")).unwrap();
        use std::io::Write;
        writeln!(cfg, "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'", dir.display()).unwrap();
        writeln!(cfg, "shared_preload_libraries = 'sponsorship'\nmax_worker_processes = 16\ntimezone = 'UTC'\n{conf}").unwrap();
        // the tests' Stripe key, in a file only the server's user reads
        let key = dir.join("stripe_secret_key");
        std::fs::write(&key, format!("{TEST_STRIPE_KEY}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::process::Command::new("chown").args(["postgres:postgres", key.to_str().unwrap()]).status().unwrap();
        writeln!(cfg, "sponsorship.stripe_secret_key_file = '{}'", key.display()).unwrap();
        let log = dir.join("server.log");
        let out = as_postgres(&[&pg_bin("pg_ctl"), "-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "start"]);
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
        OwnCluster { dir, port }
    }

    pub fn conn_string(&self, db: &str) -> String {
        format!("host={} port={} user=postgres dbname={db}", self.dir.display(), self.port)
    }

    pub fn connect(&self, db: &str) -> Client {
        Client::connect(&self.conn_string(db), NoTls).unwrap_or_else(|e| panic!("connect {db}: {e}"))
    }

    /// Connects, waiting (up to `secs`) for a server that is restarting after a crash.
    pub fn connect_waiting(&self, db: &str, secs: u64) -> Client {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            match Client::connect(&self.conn_string(db), NoTls) {
                Ok(c) => return c,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                Err(e) => panic!("the server did not come back: {e}"),
            }
        }
    }

    /// `pg_ctl restart -m immediate`: every server process ends at once, without a checkpoint,
    /// and the restart recovers from the WAL, like after a power cut.
    pub fn restart_immediate(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let out = as_postgres(&[&pg_bin("pg_ctl"), "-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-m", "immediate",
                                "-w", "restart"]);
        assert!(out.status.success(), "pg_ctl restart: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `kill -9` of one of this cluster's server processes, then waits (up to 60 s) for the
    /// crash restart it causes to finish: the postmaster notices the death, ends every other
    /// process, recovers and accepts connections again. (A connection made before it noticed
    /// would be ended by the restart.)
    pub fn kill_9_and_await_restart(&self, pid: i32) {
        let from = self.log().len();
        kill_9(pid);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let log = self.log();
            let after = &log[from.min(log.len())..];
            if let Some(i) = after.find("all server processes terminated; reinitializing") {
                if after[i..].contains("database system is ready to accept connections") {
                    return;
                }
            }
            assert!(std::time::Instant::now() < deadline, "no crash restart after kill -9 of {pid}:\n{after}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_postgres(&[&pg_bin("pg_ctl"), "-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `kill -9` of a server process.
fn kill_9(pid: i32) {
    let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
}
