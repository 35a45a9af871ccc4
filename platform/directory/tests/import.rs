//! Import of the Annuaire Santé extraction on SQLite and PostgreSQL: idempotence, incremental
//! closure and reopening (audited), malformed rows, header errors, the mass-closure guard, and
//! the look-ups authentication uses.

use megalis_audit::{AuditLog, AuditSettings, SigningKey};
use megalis_directory::{
    DirectoryError, ImportOptions, ImportReport, access, generate, import_reader,
};
use megalis_store::{Backend, Database, with_pool};
use megalis_testkit::fresh_database;

macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body(megalis_store::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body(megalis_store::Backend::Postgres).await
            }
        }
    };
}

struct Env {
    db: Database,
    audit: AuditLog,
    _dirs: (Option<tempfile::TempDir>, tempfile::TempDir),
}

async fn env(backend: Backend) -> Env {
    let (dir, db) = fresh_database(backend).await;
    let keys = tempfile::tempdir().unwrap();
    let (key, _) = SigningKey::generate().unwrap();
    let audit = AuditLog::start(db.clone(), key, AuditSettings::for_data_dir(keys.path()));
    Env {
        db,
        audit,
        _dirs: (dir, keys),
    }
}

fn synthetic(rows: u64, seed: u64) -> String {
    let mut out = Vec::new();
    generate::write(&mut out, rows, seed).unwrap();
    String::from_utf8(out).unwrap()
}

async fn import(e: &Env, text: &str) -> Result<ImportReport, DirectoryError> {
    import_text(e, text, ImportOptions::default()).await
}

async fn import_text(
    e: &Env,
    text: &str,
    options: ImportOptions,
) -> Result<ImportReport, DirectoryError> {
    let options = ImportOptions {
        source: "test.txt".into(),
        batch_rows: 700,
        ..options
    };
    import_reader(
        &e.db,
        &e.audit,
        std::io::Cursor::new(text.as_bytes().to_vec()),
        options,
    )
    .await
}

/// Every column that may change, of every entity, in a stable order.
async fn snapshot(db: &Database) -> Vec<(String, i64, bool, i64, Option<i64>)> {
    let mut all = Vec::new();
    for (table, key) in [
        ("dir_practitioner", "national_id"),
        ("dir_organisation", "structure_id"),
        ("dir_activity", "activity_id"),
    ] {
        let sql = format!(
            "SELECT {key}, content_hash, active, updated_at_us, closed_at_us FROM {table} \
             ORDER BY {key}"
        );
        let rows: Vec<(String, i64, bool, i64, Option<i64>)> = with_pool!(db, pool =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await)
        .unwrap();
        all.extend(rows);
    }
    all
}

async fn audit_actions(db: &Database, action: &str) -> Vec<String> {
    with_pool!(db, pool => sqlx::query_scalar(
        "SELECT object_id FROM audit_record WHERE action = $1 ORDER BY seq")
        .bind(action).fetch_all(pool).await)
    .unwrap()
}

async fn reimporting_the_same_file_changes_nothing(b: Backend) {
    let e = env(b).await;
    let text = synthetic(3_000, 11);
    let first = import(&e, &text).await.unwrap();
    assert_eq!(first.rows_read, 3_000);
    assert_eq!(first.rows_rejected, 0);
    assert!(first.practitioners.created > 1_500, "{first}");
    assert!(first.organisations.created > 100, "{first}");
    assert!(first.activities.created > 2_500, "{first}");
    let before = snapshot(&e.db).await;

    let second = import(&e, &text).await.unwrap();
    for c in [
        second.practitioners,
        second.organisations,
        second.activities,
    ] {
        assert_eq!(
            (c.created, c.updated, c.reopened, c.closed),
            (0, 0, 0, 0),
            "{second}"
        );
    }
    assert_eq!(second.practitioners.unchanged, first.practitioners.created);
    assert_eq!(second.activities.unchanged, first.activities.created);
    assert_eq!(
        snapshot(&e.db).await,
        before,
        "a re-import rewrote something"
    );
}
both_backends!(
    idempotent_reimport,
    reimporting_the_same_file_changes_nothing
);

/// Splits a generated file into its header and rows.
fn lines(text: &str) -> (String, Vec<String>) {
    let mut it = text.lines().map(str::to_string);
    (it.next().unwrap(), it.collect())
}

fn join(header: &str, rows: &[String]) -> String {
    let mut s = header.to_string();
    s.push('\n');
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

async fn absent_entries_are_closed_audited_and_lose_access(b: Backend) {
    let e = env(b).await;
    let (header, rows) = lines(&synthetic(400, 5));
    import(&e, &join(&header, &rows)).await.unwrap();

    // The practitioner of the first row leaves; the second row's practitioner changes name.
    let leaving = rows[0].split('|').nth(2).unwrap().to_string();
    let renamed = rows
        .iter()
        .map(|r| r.split('|').nth(2).unwrap().to_string())
        .find(|id| *id != leaving)
        .unwrap();
    let access_before = access::active_practitioner(&e.db, &leaving)
        .await
        .unwrap()
        .expect("listed practitioner is active");
    assert!(!access_before.roles.is_empty());
    assert!(access::is_active(&e.db, &leaving).await.unwrap());

    let newer: Vec<String> = rows
        .iter()
        .filter(|r| r.split('|').nth(2) != Some(leaving.as_str()))
        .map(|r| {
            let mut f: Vec<&str> = r.split('|').collect();
            if f[2] == renamed {
                f[7] = "NOUVEAU-NOM";
            }
            f.join("|")
        })
        .collect();
    let report = import(&e, &join(&header, &newer)).await.unwrap();
    assert_eq!(report.practitioners.closed, 1, "{report}");
    assert_eq!(report.practitioners.updated, 1, "{report}");
    assert_eq!(
        report.activities.closed,
        access_before.roles.len() as u64,
        "{report}"
    );

    assert!(!access::is_active(&e.db, &leaving).await.unwrap());
    assert!(
        access::active_practitioner(&e.db, &leaving)
            .await
            .unwrap()
            .is_none()
    );
    let status = access::practitioner_status(&e.db, &leaving)
        .await
        .unwrap()
        .unwrap();
    let closed_at = status.closed_since_us.expect("closing time recorded");
    let closed = access::closed_since(&e.db, closed_at).await.unwrap();
    assert_eq!(closed, vec![(leaving.clone(), closed_at)]);
    assert_eq!(
        audit_actions(&e.db, "practitioner.close").await,
        vec![leaving.clone()]
    );
    assert_eq!(
        audit_actions(&e.db, "practitioner_role.close").await.len(),
        access_before.roles.len()
    );
    let renamed_now = access::active_practitioner(&e.db, &renamed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renamed_now.family_name, "NOUVEAU-NOM");

    // Listed again: reopened, audited, access restored.
    let report = import(&e, &join(&header, &rows)).await.unwrap();
    assert_eq!(report.practitioners.reopened, 1, "{report}");
    assert_eq!(report.practitioners.closed, 0, "{report}");
    assert!(access::is_active(&e.db, &leaving).await.unwrap());
    assert_eq!(
        audit_actions(&e.db, "practitioner.reopen").await,
        vec![leaving]
    );
    assert_eq!(audit_actions(&e.db, "directory.import").await.len(), 3);
}
both_backends!(
    incremental_closure,
    absent_entries_are_closed_audited_and_lose_access
);

async fn malformed_rows_are_reported_and_the_rest_imported(b: Backend) {
    let e = env(b).await;
    let (header, mut rows) = lines(&synthetic(50, 9));
    // Line numbers count the header as line 1: rows[3] is line 5.
    let victim = rows[3].clone();
    let victim_id = victim.split('|').nth(2).unwrap().to_string();
    rows[3] = victim.replacen("|S|", "|Z|", 1).replacen("|L|", "|Z|", 1);
    rows.insert(10, "8|123|8123|".to_string());
    rows.insert(20, "x'; DROP TABLE dir_practitioner; --".into());
    let report = import(&e, &join(&header, &rows)).await.unwrap();
    assert_eq!(report.rows_read, 52);
    assert_eq!(report.rows_rejected, 3, "{report}");
    let got: Vec<(u64, &str)> = report
        .rejected
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(got[0].0, 5);
    assert!(
        got[0].1.contains("column 18 (Code mode exercice)"),
        "{got:?}"
    );
    assert_eq!(got[1].0, 12);
    assert!(got[1].1.contains("fields, expected 52"), "{got:?}");
    assert_eq!(got[2].0, 22);
    let text = report.to_string();
    assert!(text.contains("rejected line 5: column 18"), "{text}");
    let count: i64 = with_pool!(&e.db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM dir_activity").fetch_one(pool).await)
    .unwrap();
    assert_eq!(count as u64, report.activities.created);
    assert!(report.activities.created >= 45, "{report}");

    // A practitioner whose row is malformed this time is not closed for that.
    import(&e, &synthetic(50, 9)).await.unwrap();
    let again = import(&e, &join(&header, &rows)).await.unwrap();
    assert_eq!(again.practitioners.closed, 0, "{again}");
    assert!(access::is_active(&e.db, &victim_id).await.unwrap());
}
both_backends!(
    malformed_rows,
    malformed_rows_are_reported_and_the_rest_imported
);

async fn a_wrong_header_imports_nothing(b: Backend) {
    let e = env(b).await;
    let text = synthetic(10, 1).replacen("Nom d'exercice", "Nom", 1);
    let err = import(&e, &text).await.unwrap_err();
    assert!(
        matches!(&err, DirectoryError::Header(m) if m.contains("column 8")),
        "{err}"
    );
    let imports: i64 = with_pool!(&e.db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM dir_import").fetch_one(pool).await)
    .unwrap();
    assert_eq!(imports, 0);
    assert!(matches!(
        import(&e, "").await.unwrap_err(),
        DirectoryError::Header(_)
    ));
}
both_backends!(wrong_header, a_wrong_header_imports_nothing);

async fn a_truncated_file_does_not_close_everyone(b: Backend) {
    let e = env(b).await;
    let full = synthetic(2_000, 4);
    let first = import(&e, &full).await.unwrap();
    let (header, rows) = lines(&full);
    let truncated = join(&header, &rows[..100]);
    let report = import(&e, &truncated).await.unwrap();
    assert!(report.closure_refused.is_some(), "{report}");
    assert_eq!(report.practitioners.closed, 0);
    let active: i64 = with_pool!(&e.db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM dir_practitioner WHERE active").fetch_one(pool).await)
    .unwrap();
    assert_eq!(active as u64, first.practitioners.created);

    let forced = import_text(
        &e,
        &truncated,
        ImportOptions {
            allow_mass_closure: true,
            ..ImportOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(forced.closure_refused.is_none());
    assert!(forced.practitioners.closed > 1_000, "{forced}");
}
both_backends!(mass_closure_guard, a_truncated_file_does_not_close_everyone);

async fn the_access_lookup_gives_profession_specialties_and_roles(b: Backend) {
    let e = env(b).await;
    let (header, _) = lines(&synthetic(1, 1));
    let mut f = vec![""; 52];
    f[0] = "8";
    f[1] = "10001234567";
    f[2] = "810001234567";
    f[7] = "LE GALL";
    f[8] = "Maïwenn";
    f[9] = "10";
    f[10] = "Médecin";
    f[13] = "S";
    f[15] = "SM54";
    f[16] = "Médecine générale";
    f[17] = "S";
    f[21] = "290000017";
    f[23] = "1290000017";
    f[24] = "CHU DE BREST";
    let hospital = format!("{}|", f.join("|"));
    f[15] = "SM53";
    f[16] = "Néphrologie";
    f[17] = "L";
    f[21] = "";
    f[23] = "";
    let no_site = format!("{}|", f.join("|"));
    import(&e, &join(&header, &[hospital, no_site]))
        .await
        .unwrap();
    let a = access::active_practitioner(&e.db, "810001234567")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.profession.code, "10");
    assert_eq!(a.given_name, "Maïwenn");
    let specialties: Vec<&str> = a.specialties.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(specialties.len(), 2);
    assert!(specialties.contains(&"SM54") && specialties.contains(&"SM53"));
    let at_hospital = a
        .roles
        .iter()
        .find(|r| r.structure_id.as_deref() == Some("1290000017"))
        .unwrap();
    assert_eq!(
        at_hospital.organisation_name.as_deref(),
        Some("CHU DE BREST")
    );
    assert_eq!(at_hospital.mode.as_deref(), Some("S"));
    assert!(
        access::active_practitioner(&e.db, "899999999999")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        access::practitioner_status(&e.db, "899999999999")
            .await
            .unwrap()
            .is_none()
    );
}
both_backends!(
    access_lookup,
    the_access_lookup_gives_profession_specialties_and_roles
);
