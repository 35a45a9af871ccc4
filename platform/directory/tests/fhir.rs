//! FHIR search and read against real databases (SQLite and PostgreSQL): name folding, tokens,
//! references, `_lastUpdated`, paging, and injection attempts that must match nothing.

use megalis_audit::{AuditLog, AuditSettings, SigningKey};
use megalis_directory::fhir::{self, ResourceType};
use megalis_directory::{DirectoryError, ImportOptions, generate, import_reader};
use megalis_store::{Backend, Database, with_pool};
use megalis_testkit::fresh_database;
use serde_json::Value;

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

const BASE: &str = "https://sante.example/fhir";

async fn loaded(b: Backend) -> (Option<tempfile::TempDir>, tempfile::TempDir, Database) {
    let (dir, db) = fresh_database(b).await;
    let keys = tempfile::tempdir().unwrap();
    let (key, _) = SigningKey::generate().unwrap();
    let audit = AuditLog::start(db.clone(), key, AuditSettings::for_data_dir(keys.path()));
    let mut text = Vec::new();
    generate::write(&mut text, 500, 21).unwrap();
    // One hand-written practitioner with accents, an apostrophe and LIKE wildcards nearby.
    let mut f = vec![""; 52];
    f[0] = "8";
    f[1] = "10009999999";
    f[2] = "810009999999";
    f[5] = "MME";
    f[7] = "LE QUÉRÉ-KÉROUÉDAN";
    f[8] = "Anaëlle-Rozenn";
    f[9] = "10";
    f[15] = "SM53";
    f[13] = "S";
    f[17] = "S";
    f[23] = "T299999990";
    f[21] = "299999990";
    f[24] = "CHU 100% BREST";
    text.extend_from_slice(format!("{}|\n", f.join("|")).as_bytes());
    import_reader(
        &db,
        &audit,
        std::io::Cursor::new(text),
        ImportOptions::default(),
    )
    .await
    .unwrap();
    (dir, keys, db)
}

async fn search(db: &Database, rt: ResourceType, query: &[(&str, &str)]) -> Value {
    let params: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    fhir::search(db, rt, &params, BASE).await.unwrap()
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|x| x["resource"]["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn searches_match_what_they_should(b: Backend) {
    let (_d, _k, db) = loaded(b).await;
    use ResourceType::*;
    let me = ["810009999999".to_string()];
    for query in [
        vec![("family", "le quere")],
        vec![("family", "kerouedan")],
        vec![("name", "ANAELLE")],
        vec![("given", "anaël")],
        vec![("family:exact", "LE QUÉRÉ-KÉROUÉDAN")],
        vec![("family:contains", "roued")],
        vec![("identifier", "urn:oid:1.2.250.1.71.4.2.1|810009999999")],
        vec![("identifier", "http://rpps.fr|10009999999")],
        vec![("identifier", "10009999999")],
        vec![("_id", "810009999999"), ("active", "true")],
    ] {
        assert_eq!(
            ids(&search(&db, Practitioner, &query).await),
            me,
            "{query:?}"
        );
    }
    assert!(ids(&search(&db, Practitioner, &[("family:exact", "le quere")]).await).is_empty());
    assert!(
        ids(&search(
            &db,
            Practitioner,
            &[("identifier", "http://other|810009999999")]
        )
        .await)
        .is_empty()
    );

    let role = search(
        &db,
        PractitionerRole,
        &[
            ("specialty", "SM53"),
            ("organization", "Organization/T299999990"),
        ],
    )
    .await;
    assert_eq!(role["total"], 1);
    assert_eq!(
        role["entry"][0]["resource"]["practitioner"]["reference"],
        "Practitioner/810009999999"
    );
    let org = search(
        &db,
        Organization,
        &[("identifier", "http://finess.sante.gouv.fr|299999990")],
    )
    .await;
    assert_eq!(ids(&org), ["T299999990"]);
    assert_eq!(
        ids(&search(&db, Organization, &[("name", "chu 100%")]).await),
        ["T299999990"]
    );
    assert!(ids(&search(&db, Organization, &[("name", "chu 1000")]).await).is_empty());

    let read = fhir::read(&db, Practitioner, "810009999999")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read["gender"], "female");
    assert_eq!(read["name"][0]["given"][0], "Anaëlle-Rozenn");
    assert!(
        fhir::read(&db, Practitioner, "8' OR '1'='1")
            .await
            .unwrap()
            .is_none()
    );

    let all = search(&db, Practitioner, &[("_count", "0")]).await["total"]
        .as_u64()
        .unwrap();
    assert!(all > 300);
    for attack in [
        ("name", "%"),
        ("name", "_"),
        ("family", "\\"),
        ("family", "' OR 1=1 --"),
        ("family:contains", "%' OR '1'='1"),
        ("_id", "x'; DROP TABLE dir_practitioner; --"),
        ("identifier", "a|b' OR 'x'='x"),
    ] {
        let b = search(&db, Practitioner, &[attack]).await;
        assert_eq!(b["total"], 0, "{attack:?}");
    }
    let still: i64 = with_pool!(&db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM dir_practitioner").fetch_one(pool).await)
    .unwrap();
    assert_eq!(still as u64, all);

    // _lastUpdated: everything was updated today, nothing before 2020 or after 2100.
    assert_eq!(
        search(&db, Practitioner, &[("_lastUpdated", "ge2020")]).await["total"].as_u64(),
        Some(all)
    );
    assert_eq!(
        search(&db, Practitioner, &[("_lastUpdated", "lt2020-01-01")]).await["total"],
        0
    );
    assert_eq!(
        search(
            &db,
            Practitioner,
            &[("_lastUpdated", "gt2100-01-01T00:00:00Z")]
        )
        .await["total"],
        0
    );

    // Paging walks every match exactly once.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = search(
            &db,
            Practitioner,
            &[("_count", "97"), ("_offset", &offset.to_string())],
        )
        .await;
        seen.extend(ids(&page));
        let next = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next");
        match next {
            Some(l) => {
                let url = l["url"].as_str().unwrap();
                assert!(
                    url.starts_with("https://sante.example/fhir/Practitioner?"),
                    "{url}"
                );
                offset += 97;
            }
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(seen.len() as u64, all);
    assert_eq!(unique.len(), seen.len());

    let err = fhir::search(
        &db,
        Practitioner,
        &[("specialty".into(), "SM54".into())],
        BASE,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DirectoryError::InvalidSearch(_)), "{err}");
}
both_backends!(fhir_search, searches_match_what_they_should);
