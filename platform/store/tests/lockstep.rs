//! The SQLite and PostgreSQL migrations are kept in lockstep: the same files, and once applied the
//! same tables, columns and named indexes (types differ by dialect and are not compared).

use std::collections::BTreeSet;

use megalis_store::{Backend, Database};
use megalis_testkit::fresh_database;

type Schema = (BTreeSet<(String, String)>, BTreeSet<String>);

async fn schema(db: &Database) -> Schema {
    let (columns, indexes): (Vec<(String, String)>, Vec<String>) = match db {
        Database::Sqlite(pool) => (
            sqlx::query_as(
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
                 AND m.name <> '_sqlx_migrations'",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
            // Explicit CREATE INDEX only (automatic indexes have no SQL).
            sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
        ),
        Database::Postgres(pool) => (
            sqlx::query_as(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
            // Explicit CREATE INDEX only (not those backing a primary key or constraint).
            sqlx::query_scalar(
                "SELECT i.relname::text FROM pg_index x \
                 JOIN pg_class i ON i.oid = x.indexrelid \
                 JOIN pg_namespace n ON n.oid = i.relnamespace \
                 WHERE n.nspname = 'public' \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
        ),
    };
    (columns.into_iter().collect(), indexes.into_iter().collect())
}

fn migration_files(dialect: &str) -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_are_in_lockstep() {
    assert_eq!(migration_files("sqlite"), migration_files("postgres"));
    let (_dir, sqlite) = fresh_database(Backend::Sqlite).await;
    let (_, postgres) = fresh_database(Backend::Postgres).await;
    let (s, p) = (schema(&sqlite).await, schema(&postgres).await);
    assert!(!s.0.is_empty(), "no table found in the SQLite schema");
    assert_eq!(s.0, p.0, "tables and columns differ");
    assert_eq!(s.1, p.1, "named indexes differ");
}
