//! The plugin-scoped key-value store behind the `store` capability. The host passes the plugin
//! id on every call; a plugin never names it, so it cannot reach another plugin's entries.

use std::collections::BTreeMap;
use std::sync::Mutex;

use megalis_store::{Database, with_pool};

use crate::access::BoxFuture;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub key: String,
    pub value: Vec<u8>,
    /// Regional patient id when the entry is patient data.
    pub patient: Option<String>,
}

/// The store failed; `unavailable` tells an outage (retry later) from a bug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvFailure {
    pub unavailable: bool,
}

pub trait KvStore: Send + Sync {
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<KvEntry>, KvFailure>>;
    fn put<'a>(&'a self, plugin: &'a str, entry: KvEntry) -> BoxFuture<'a, Result<(), KvFailure>>;
    fn delete<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, KvFailure>>;
    /// Keys starting with `prefix`, after `start_after`, in byte order, at most `limit`.
    fn scan<'a>(
        &'a self,
        plugin: &'a str,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<KvEntry>, KvFailure>>;
}

/// In memory: `megalis plugin run` and tests.
#[derive(Default)]
pub struct MemoryKv {
    entries: Mutex<BTreeMap<(String, String), KvEntry>>,
}

impl MemoryKv {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), KvEntry>> {
        // A panic while holding the lock cannot leave a half-written map (each operation is
        // one insert or remove), so a poisoned lock is still consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl KvStore for MemoryKv {
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<KvEntry>, KvFailure>> {
        let found = self
            .lock()
            .get(&(plugin.to_owned(), key.to_owned()))
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn put<'a>(&'a self, plugin: &'a str, entry: KvEntry) -> BoxFuture<'a, Result<(), KvFailure>> {
        self.lock()
            .insert((plugin.to_owned(), entry.key.clone()), entry);
        Box::pin(async { Ok(()) })
    }

    fn delete<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, KvFailure>> {
        let removed = self
            .lock()
            .remove(&(plugin.to_owned(), key.to_owned()))
            .is_some();
        Box::pin(async move { Ok(removed) })
    }

    fn scan<'a>(
        &'a self,
        plugin: &'a str,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<KvEntry>, KvFailure>> {
        let entries = self.lock();
        let found: Vec<KvEntry> = entries
            .range((plugin.to_owned(), prefix.to_owned())..)
            .take_while(|((p, k), _)| p == plugin && k.starts_with(prefix))
            .filter(|((_, k), _)| start_after.is_none_or(|after| k.as_str() > after))
            .take(limit as usize)
            .map(|(_, e)| e.clone())
            .collect();
        Box::pin(async move { Ok(found) })
    }
}

/// On the platform database (table `plugin_kv`, SQLite or PostgreSQL).
pub struct SqlKv {
    db: Database,
}

impl SqlKv {
    pub fn new(db: Database) -> SqlKv {
        SqlKv { db }
    }
}

fn failure(e: sqlx::Error) -> KvFailure {
    let unavailable = megalis_store::is_connection_error(&e);
    if !unavailable {
        tracing::error!(error = %e, "plugin store query failed");
    }
    KvFailure { unavailable }
}

type Row = (String, Vec<u8>, Option<String>);

fn entry((key, value, patient): Row) -> KvEntry {
    KvEntry {
        key,
        value,
        patient,
    }
}

impl KvStore for SqlKv {
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<KvEntry>, KvFailure>> {
        Box::pin(async move {
            let row: Option<Row> = with_pool!(&self.db, pool => sqlx::query_as(
                "SELECT key, value, patient_id FROM plugin_kv WHERE plugin_id = $1 AND key = $2",
            )
            .bind(plugin)
            .bind(key)
            .fetch_optional(pool)
            .await)
            .map_err(failure)?;
            Ok(row.map(entry))
        })
    }

    fn put<'a>(&'a self, plugin: &'a str, entry: KvEntry) -> BoxFuture<'a, Result<(), KvFailure>> {
        Box::pin(async move {
            with_pool!(&self.db, pool => sqlx::query(
                "INSERT INTO plugin_kv (plugin_id, key, value, patient_id, updated_at_us) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, \
                 patient_id = excluded.patient_id, updated_at_us = excluded.updated_at_us",
            )
            .bind(plugin)
            .bind(&entry.key)
            .bind(&entry.value)
            .bind(&entry.patient)
            .bind(megalis_audit::record::now_us())
            .execute(pool)
            .await
            .map(|_| ()))
            .map_err(failure)?;
            Ok(())
        })
    }

    fn delete<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, KvFailure>> {
        Box::pin(async move {
            let done = with_pool!(&self.db, pool => sqlx::query(
                "DELETE FROM plugin_kv WHERE plugin_id = $1 AND key = $2",
            )
            .bind(plugin)
            .bind(key)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
            .map_err(failure)?;
            Ok(done > 0)
        })
    }

    fn scan<'a>(
        &'a self,
        plugin: &'a str,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<KvEntry>, KvFailure>> {
        Box::pin(async move {
            // `key >= prefix` lets the primary key index find the start of the range; the
            // substr test ends it. Both databases compare keys byte-wise (PostgreSQL column
            // collation "C").
            let after = start_after.unwrap_or("");
            let rows: Vec<Row> = with_pool!(&self.db, pool => sqlx::query_as(
                "SELECT key, value, patient_id FROM plugin_kv \
                 WHERE plugin_id = $1 AND key >= $2 AND substr(key, 1, length($2)) = $2 \
                 AND key > $3 ORDER BY key LIMIT $4",
            )
            .bind(plugin)
            .bind(prefix)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)
            .map_err(failure)?;
            Ok(rows.into_iter().map(entry).collect())
        })
    }
}
