//! Test support: every test gets a database of its own.
//!
//! PostgreSQL tests use the shared server of the machine (`MEGALIS_TEST_PG`, default
//! `postgres://postgres@127.0.0.1:5432/test`) and create a fresh database in it, so tests run in
//! parallel without seeing each other. A test that must stop its database starts a private
//! cluster instead ([`PrivateCluster`]), never touching the shared server.

mod plugins;

pub use plugins::{test_plugin, test_plugins_dir};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use megalis_store::{Database, PoolSettings};
use sqlx::Connection;

/// URL of the shared PostgreSQL server's administrative database.
pub fn admin_url() -> String {
    std::env::var("MEGALIS_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("database URL has a path");
    format!("{base}/{name}")
}

fn random_suffix() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// A fresh, empty PostgreSQL database on the shared server; returns its URL.
pub async fn fresh_postgres_url() -> String {
    let name = format!("megalis_t_{}", random_suffix());
    let mut admin = sqlx::PgConnection::connect(&admin_url())
        .await
        .expect("the shared PostgreSQL server at MEGALIS_TEST_PG must be reachable");
    // The name is ours (fixed prefix and hex digits), never user input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    with_database(&admin_url(), &name)
}

/// A temporary directory holding an SQLite file; returns the directory (keep it alive) and URL.
pub fn fresh_sqlite_url() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = Database::default_url(dir.path());
    (dir, url)
}

/// Opens and migrates a fresh database of the given backend.
pub async fn fresh_database(
    backend: megalis_store::Backend,
) -> (Option<tempfile::TempDir>, Database) {
    let (dir, url) = match backend {
        megalis_store::Backend::Sqlite => {
            let (dir, url) = fresh_sqlite_url();
            (Some(dir), url)
        }
        megalis_store::Backend::Postgres => (None, fresh_postgres_url().await),
    };
    let db = Database::open(&url, &PoolSettings::default()).expect("open database");
    db.migrate().await.expect("migrate");
    (dir, db)
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A PostgreSQL cluster of the test's own, made with `initdb` on a free port, which the test may
/// stop and start at will. Dropped: stopped and deleted.
pub struct PrivateCluster {
    dir: tempfile::TempDir,
    pub port: u16,
}

fn pg_bin(name: &str) -> PathBuf {
    // Debian installs the server binaries outside PATH; prefer the newest version present.
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        versions.sort();
        if let Some(v) = versions.last() {
            let p = v.join("bin").join(name);
            if p.exists() {
                return p;
            }
        }
    }
    PathBuf::from(name)
}

/// PostgreSQL refuses to run as root; the tests (and CI) run as root, so the cluster runs as the
/// `postgres` system user when we are root.
fn as_server_user(program: &Path) -> Command {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl PrivateCluster {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("megalis-pg-")
            .tempdir()
            .expect("temporary directory");
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        let data = dir.path().join("data");
        let status = as_server_user(&pg_bin("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        let cluster = PrivateCluster {
            dir,
            port: free_port(),
        };
        cluster.start_server();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_server(&self) {
        let status = as_server_user(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-l"])
            .arg(self.dir.path().join("server.log"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.path().display()
            ))
            .arg("start")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run pg_ctl start");
        assert!(status.success(), "pg_ctl start failed");
    }

    /// Stops the server at once (fast shutdown: open connections are cut).
    pub fn stop_server(&self) {
        let status = as_server_user(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "fast", "stop"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run pg_ctl stop");
        assert!(status.success(), "pg_ctl stop failed");
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = as_server_user(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
