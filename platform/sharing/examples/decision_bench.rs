//! Cost of an access decision: the pure `decide` alone, and what a request pays — reading the
//! patient's facts (directives, care links, hospital stays, emergency accesses, merge
//! lineage) from the database, then deciding.
//!
//! `cargo run --release -p megalis-sharing --example decision_bench -- [sqlite|postgres] [patients]`
//! (PostgreSQL from MEGALIS_TEST_PG, a fresh database created and dropped).

use std::time::Instant;

use megalis_sharing::{
    AccessRequest, Action, CareLinkSource, Confidentiality, DirectiveKind, DocumentFacts,
    NewCareLink, NewDirective, Purpose, Requester, Resource, SharingSettings, SharingStore, decide,
};
use megalis_store::{Backend, with_pool};

const HOUR: i64 = 3_600_000_000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = match args.get(1).map(String::as_str) {
        Some("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let patients: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let (_dir, db) = megalis_testkit::fresh_database(backend).await;
    let store = SharingStore::new(db.clone(), SharingSettings::default());
    let now = 1_790_000_000_000_000i64;

    // Patients with identities, a hospital stay, a declared relationship, and a directive for
    // one in five.
    let started = Instant::now();
    for n in 0..patients {
        let id = format!("BZH{n:07}");
        let sql_patient = format!(
            "INSERT INTO identity_patient (regional_id, seq, status, golden, created_at_us, \
             updated_at_us) VALUES ('{id}', {n}, 'PROV', '{{}}', 0, 0)"
        );
        let sql_source = format!(
            "INSERT INTO identity_source (authority, local_id, regional_id, status, record, \
             version, updated_at_us) VALUES ('chu', 'IPP{n}', '{id}', 'PROV', '{{}}', 1, 0)"
        );
        let sql_stay = format!(
            "INSERT INTO encounter_participant (authority, visit_number, practitioner, role, \
             local_id, start_us, end_us, updated_at_us) VALUES ('chu', 'V{n}', '8100{:08}', \
             'attending', 'IPP{n}', {}, NULL, 0)",
            n % 5000,
            now - 24 * HOUR
        );
        with_pool!(&db, pool => {
            for sql in [&sql_patient, &sql_source, &sql_stay] {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(pool).await.unwrap();
            }
        });
        store
            .add_care_link(
                &NewCareLink {
                    regional_id: id.clone(),
                    practitioner: format!("8200{:08}", n % 5000),
                    source: CareLinkSource::Declaration,
                    justification: "Médecin traitant déclaré".into(),
                    referred_by: None,
                    start: now - HOUR,
                    end: None,
                    created_by: "bench".into(),
                },
                now,
            )
            .await
            .unwrap();
        if n % 5 == 0 {
            store
                .record_directive(
                    &NewDirective {
                        regional_id: id.clone(),
                        kind: DirectiveKind::Mask,
                        practitioner: None,
                        document_id: Some(format!("doc-{n}")),
                        start: now - HOUR,
                        end: None,
                        note: String::new(),
                        recorded_by: "bench".into(),
                    },
                    now,
                )
                .await
                .unwrap();
        }
    }
    eprintln!(
        "loaded {patients} patients in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let requester = Requester::Professional {
        national_id: "810000000042".into(),
        second_factor: true,
        active: true,
    };
    let resource = Resource::Document(DocumentFacts {
        id: "doc-0".into(),
        author: None,
        confidentiality: Confidentiality::Normal,
    });

    // The pure decision.
    let facts = store.facts("BZH0000042", now).await.unwrap();
    let rounds = 1_000_000;
    let t = Instant::now();
    let mut allowed = 0;
    for _ in 0..rounds {
        let d = decide(&AccessRequest {
            requester: std::hint::black_box(&requester),
            resource: &resource,
            action: Action::Read,
            purpose: Purpose::Care,
            facts: &facts,
            now,
        });
        allowed += usize::from(d.allowed);
    }
    let pure_ns = t.elapsed().as_nanos() as f64 / rounds as f64;

    // Facts from the database, then the decision, for random patients.
    let mut samples = Vec::new();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..2_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let id = format!("BZH{:07}", state as usize % patients);
        let t = Instant::now();
        let facts = store.facts(&id, now).await.unwrap();
        let d = decide(&AccessRequest {
            requester: &requester,
            resource: &resource,
            action: Action::Read,
            purpose: Purpose::Care,
            facts: &facts,
            now,
        });
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        allowed += usize::from(d.allowed);
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "{} patients on {}: decide alone {:.0} ns; facts + decide p50 {:.0} µs, p99 {:.0} µs (allowed {allowed})",
        patients,
        backend.name(),
        pure_ns,
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
    );
}
