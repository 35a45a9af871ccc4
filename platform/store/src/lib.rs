//! One database handle for the whole platform.
//!
//! Megalis runs on an embedded SQLite file (one replica, the default for a laptop or a small
//! site) or on PostgreSQL (production, several replicas). Rather than erase the difference behind
//! `sqlx::Any` — which cannot set SQLite pragmas, has no PostgreSQL `LISTEN`, and supports only a
//! handful of column types — [`Database`] keeps the native pool of each backend, and the
//! [`with_pool!`] macro lets one piece of query code run against either: the SQL is written once
//! in the common dialect (`$1` placeholders work on both), and where the dialects really differ
//! the caller matches on [`Database::backend`].
//!
//! Schema changes live in `migrations/sqlite` and `migrations/postgres`, one file per change with
//! the same name in both; a test applies both and compares the resulting tables and columns.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use sqlx;

pub mod events;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: expected sqlite:… or postgres://…")]
    UnsupportedUrl(String),
    #[error("invalid database URL: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

impl StoreError {
    /// True when the error says the database could not be reached (as opposed to a bad query),
    /// so the caller should answer 503 and retry later rather than report a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Query(e) | StoreError::InvalidUrl(e) => is_connection_error(e),
            StoreError::Migration(sqlx::migrate::MigrateError::Execute(e)) => {
                is_connection_error(e)
            }
            _ => false,
        }
    }
}

/// Whether an sqlx error means "the database is not there" rather than "the query is wrong".
pub fn is_connection_error(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    ) || matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| {
        // PostgreSQL class 08 (connection exception), 57P01..57P03 (admin shutdown, crash
        // shutdown, cannot connect now).
        c.starts_with("08") || c.starts_with("57P")
    }))
}

/// Which database engine a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Pool settings shared by both backends.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a query waits for a free connection before failing (and the request with 503).
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A pool of connections to SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same query code against whichever pool a [`Database`] holds.
///
/// ```ignore
/// let n: i64 = with_pool!(&db, pool => sqlx::query_scalar("SELECT count(*) FROM audit_record")
///     .fetch_one(pool).await)?;
/// ```
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Database::Sqlite($pool) => $body,
            $crate::Database::Postgres($pool) => $body,
        }
    };
}

/// Point-in-time pool figures for the metrics endpoint.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

impl Database {
    /// The default database of a data directory: an SQLite file inside it.
    pub fn default_url(data_dir: &Path) -> String {
        format!("sqlite://{}", data_dir.join("megalis.db").display())
    }

    /// Opens a pool without waiting for the database: PostgreSQL connections are made on first
    /// use, so a server can start (and report not-ready) while its database is still down.
    pub fn open(url: &str, settings: &PoolSettings) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(StoreError::InvalidUrl)?
                .create_if_missing(true)
                // WAL lets readers proceed while one writer commits; FULL makes every commit
                // reach the disk before the caller is told it succeeded (audit durability).
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.max_connections.max(1))
                .acquire_timeout(settings.acquire_timeout)
                .connect_lazy_with(options);
            Ok(Database::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)
                .map_err(StoreError::InvalidUrl)?
                .application_name("megalis");
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections.max(1))
                .acquire_timeout(settings.acquire_timeout)
                // A connection that died with the server must not be handed out again.
                .test_before_acquire(true)
                .connect_lazy_with(options);
            Ok(Database::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Database::Sqlite(_) => &SQLITE_MIGRATIONS,
            Database::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies pending migrations. Safe to call from several replicas at once: on PostgreSQL
    /// sqlx serialises them with an advisory lock.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => self.migrator().run(pool).await)?;
        Ok(())
    }

    /// Retries [`Database::migrate`] with exponential backoff (capped, with jitter) until the
    /// database is reachable. Errors other than unavailability are returned at once.
    pub async fn migrate_when_available(
        &self,
        max_wait: Option<Duration>,
    ) -> Result<(), StoreError> {
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            match self.migrate().await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_unavailable() => {
                    if max_wait.is_some_and(|m| started.elapsed() + delay > m) {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                        backend = self.backend().name(), "database not reachable; retrying");
                    tokio::time::sleep(jitter(delay)).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether every embedded migration has been applied successfully.
    pub async fn migrations_applied(&self) -> Result<bool, StoreError> {
        let applied: Vec<i64> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool).await)
        .or_else(|e| match &e {
            // The bookkeeping table does not exist yet: nothing applied.
            sqlx::Error::Database(d) if d.message().contains("_sqlx_migrations") => Ok(vec![]),
            _ => Err(e),
        })?;
        Ok(self
            .migrator()
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .all(|m| applied.contains(&m.version)))
    }

    /// A round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
            .map_err(StoreError::Unavailable)?;
        Ok(())
    }

    pub fn pool_stats(&self) -> PoolStats {
        with_pool!(self, pool => PoolStats {
            size: pool.size(),
            idle: pool.num_idle() as u32,
            max: pool.options().get_max_connections(),
        })
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

fn jitter(d: Duration) -> Duration {
    use rand::Rng;
    let ms = d.as_millis() as u64;
    Duration::from_millis(ms / 2 + rand::rng().random_range(0..=ms / 2))
}

/// Hides the password of a database URL before it is logged or printed.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://megalis:s3cret@db:5432/megalis"),
            "postgres://megalis:***@db:5432/megalis"
        );
        assert_eq!(redact_url("postgres://db/megalis"), "postgres://db/megalis");
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }

    #[test]
    fn refuses_other_schemes() {
        let err = Database::open("mysql://x/y", &PoolSettings::default()).unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err}");
    }
}
