//! The patient index on both backends: linking, twins, review, merge and unmerge, RNIV rules,
//! redelivery and all-or-nothing changes, audit records.

use megalis_audit::{Actor, AuditLog, AuditSettings, SigningKey};
use megalis_identity::ins::{OID_NIR, with_key};
use megalis_identity::{
    Attributes, Demographics, IdentityStatus, Ins, Sex, SourceId, SourceRecord, StrictTraits,
};
use megalis_identity_index::{
    Applied, Change, IndexError, IndexSettings, MessageKey, PatientIndex, Resolution,
};
use megalis_store::{Backend, Database};
use megalis_testkit::fresh_database;
use time::macros::date;

struct Env {
    _db_dir: Option<tempfile::TempDir>,
    _files: tempfile::TempDir,
    db: Database,
    index: PatientIndex,
}

async fn env(backend: Backend) -> Env {
    let (dir, db) = fresh_database(backend).await;
    let files = tempfile::tempdir().unwrap();
    let settings = AuditSettings::for_data_dir(files.path());
    let key = SigningKey::load_or_create(&settings.signing_key_path).unwrap();
    let audit = AuditLog::start(db.clone(), key, settings);
    let index = PatientIndex::new(db.clone(), audit, IndexSettings::default()).unwrap();
    Env {
        _db_dir: dir,
        _files: files,
        db,
        index,
    }
}

const CHU_BREST: &str = "1.2.250.1.71.4.2.2.290000017";
const CHU_RENNES: &str = "1.2.250.1.71.4.2.2.350005179";
const CH_LORIENT: &str = "1.2.250.1.71.4.2.2.560023210";

fn ins(number: &str) -> Ins {
    Ins::parse(&with_key(number).unwrap(), OID_NIR, false).unwrap()
}

fn anne(authority: &str, ipp: &str) -> SourceRecord {
    SourceRecord {
        id: SourceId {
            authority: authority.into(),
            local_id: ipp.into(),
        },
        ins: Some(ins("2690229019123")),
        demographics: Demographics {
            traits: StrictTraits {
                birth_name: "Le Goff".into(),
                birth_first_names: vec!["Anne".into(), "Marie".into()],
                birth_date: date!(1969 - 02 - 14),
                sex: Sex::Female,
                birthplace: Some("29019".into()),
            },
            used_name: Some("Morvan".into()),
            used_first_name: None,
            address: None,
            telecom: None,
        },
        status: IdentityStatus::Qual,
        attributes: Attributes::default(),
        updated_us: 1,
    }
}

fn actor() -> Actor {
    Actor::new("test-reviewer")
}

async fn upsert(e: &Env, r: SourceRecord) -> Vec<megalis_identity_index::Effect> {
    match e
        .index
        .apply(&actor(), &[Change::Upsert(r)], None)
        .await
        .unwrap()
    {
        Applied::Done(effects) => effects,
        Applied::Duplicate(_) => panic!("not a message"),
    }
}

async fn audit_actions(db: &Database) -> Vec<(String, Option<String>)> {
    megalis_store::with_pool!(db, pool => sqlx::query_as(
        "SELECT action, patient_id FROM audit_record ORDER BY seq").fetch_all(pool).await.unwrap())
}

async fn both(f: impl AsyncFn(Env)) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        f(env(backend).await).await;
    }
}

#[tokio::test]
async fn duplicates_link_twins_do_not() {
    both(async |e: Env| {
        let first = upsert(&e, anne(CHU_BREST, "B1")).await;
        assert_eq!(first[0].action, "patient.create");
        let patient = first[0].regional_id.clone();
        megalis_identity::RegionalId::parse(&patient).unwrap();

        // Another hospital, no INS, names typed in capitals with a hyphen.
        let mut dup = anne(CHU_RENNES, "R1");
        dup.ins = None;
        dup.status = IdentityStatus::Prov;
        dup.demographics.traits.birth_name = "LE-GOFF".into();
        dup.demographics.traits.birth_first_names = vec!["ANNE".into(), "MARIE".into()];
        let linked = upsert(&e, dup).await;
        assert_eq!(linked[0].action, "patient.link");
        assert_eq!(linked[0].regional_id, patient);

        // Her twin sister: same birth name, date and place, another first name and INS.
        let mut twin = anne(CH_LORIENT, "L1");
        twin.ins = Some(ins("2690229019124"));
        twin.demographics.traits.birth_first_names = vec!["Soizic".into()];
        twin.demographics.used_name = None;
        let created = upsert(&e, twin.clone()).await;
        assert_eq!(created[0].action, "patient.create");
        assert_ne!(created[0].regional_id, patient);
        // Even without her INS, she is not linked to her sister automatically.
        let mut twin_no_ins = twin;
        twin_no_ins.id.local_id = "L2".into();
        twin_no_ins.ins = None;
        twin_no_ins.status = IdentityStatus::Vali;
        let effects = upsert(&e, twin_no_ins).await;
        assert_ne!(effects[0].regional_id, patient);

        let p = e.index.patient(&patient).await.unwrap().unwrap();
        assert_eq!(p.sources.len(), 2);
        assert_eq!(p.golden.status, IdentityStatus::Qual);
        assert!(p.golden.shareable_ins().is_some());

        let actions = audit_actions(&e.db).await;
        assert_eq!(
            actions[0],
            ("patient.create".to_string(), Some(patient.clone()))
        );
        assert_eq!(actions[1], ("patient.link".to_string(), Some(patient)));
    })
    .await;
}

#[tokio::test]
async fn review_merge_and_unmerge_restore_everything() {
    both(async |e: Env| {
        let a = upsert(&e, anne(CHU_BREST, "B1")).await[0]
            .regional_id
            .clone();
        // A known homonym: everything matches, but HOMON sends it to review.
        let mut homon = anne(CHU_RENNES, "R1");
        homon.ins = None;
        homon.status = IdentityStatus::Vali;
        homon.attributes.homonym = true;
        let effects = upsert(&e, homon).await;
        assert_eq!(effects[0].action, "patient.create");
        let b = effects[0].regional_id.clone();
        assert_eq!(effects[1].action, "patient.review");
        assert_eq!(effects[1].regional_id, a);

        let reviews = e.index.open_reviews(10).await.unwrap();
        assert_eq!(reviews.len(), 1);
        assert_eq!(reviews[0].candidate, a);
        let before_a = e.index.patient(&a).await.unwrap().unwrap();
        let before_b = e.index.patient(&b).await.unwrap().unwrap();

        e.index
            .resolve_review(&actor(), reviews[0].id, Resolution::SamePatient)
            .await
            .unwrap();
        assert!(e.index.open_reviews(10).await.unwrap().is_empty());
        let merged = e.index.patient(&b).await.unwrap().unwrap();
        assert_eq!(merged.merged_into.as_deref(), Some(a.as_str()));
        assert_eq!(e.index.patient(&a).await.unwrap().unwrap().sources.len(), 2);
        let r1 = SourceId {
            authority: CHU_RENNES.into(),
            local_id: "R1".into(),
        };
        assert_eq!(
            e.index.patient_of(&r1).await.unwrap().as_deref(),
            Some(a.as_str())
        );
        assert!(matches!(
            e.index
                .resolve_review(&actor(), reviews[0].id, Resolution::Distinct)
                .await,
            Err(IndexError::ReviewClosed(_))
        ));

        // Plugins learn of the merge, and then of its undoing, from the event log.
        use megalis_store::events::{PATIENT_MERGED, PATIENT_UNMERGED, poll};
        let merged_events = poll(&e.db, PATIENT_MERGED, 0, 10).await.unwrap();
        assert_eq!(merged_events.len(), 1);
        assert_eq!(merged_events[0].patient_id.as_deref(), Some(a.as_str()));
        let payload: serde_json::Value = serde_json::from_str(&merged_events[0].payload).unwrap();
        assert_eq!(payload["survivor"], a.as_str());
        assert_eq!(payload["merged"], b.as_str());
        assert!(
            poll(&e.db, PATIENT_UNMERGED, 0, 10)
                .await
                .unwrap()
                .is_empty()
        );

        // Unmerge: merge ids start at 1 on a fresh database.
        e.index.unmerge(&actor(), 1).await.unwrap();
        let unmerged = poll(&e.db, PATIENT_UNMERGED, 0, 10).await.unwrap();
        assert_eq!(unmerged.len(), 1);
        assert_eq!(unmerged[0].patient_id.as_deref(), Some(b.as_str()));
        assert!(unmerged[0].id > merged_events[0].id);
        let after_a = e.index.patient(&a).await.unwrap().unwrap();
        let after_b = e.index.patient(&b).await.unwrap().unwrap();
        assert_eq!(after_a.sources, before_a.sources);
        assert_eq!(after_b.sources, before_b.sources);
        assert_eq!(after_a.golden, before_a.golden);
        assert_eq!(after_b.golden, before_b.golden);
        assert_eq!(after_b.merged_into, None);
        assert!(matches!(
            e.index.unmerge(&actor(), 1).await,
            Err(IndexError::AlreadyUnmerged(1))
        ));

        // History of R1: created on b, merged to a, restored to b.
        let history = e.index.history(&r1).await.unwrap();
        let links: Vec<(&str, &str)> = history
            .iter()
            .map(|(_, p, c, _)| (p.as_str(), c.as_str()))
            .collect();
        assert_eq!(
            links,
            [
                (b.as_str(), "create"),
                (a.as_str(), "merge 1"),
                (b.as_str(), "unmerge 1")
            ]
        );

        // One audit record per patient touched by the merge and by the unmerge.
        let actions = audit_actions(&e.db).await;
        for action in ["patient.merge", "patient.unmerge"] {
            let mut patients: Vec<_> = actions
                .iter()
                .filter(|(x, _)| x == action)
                .map(|(_, p)| p.clone().unwrap())
                .collect();
            patients.sort();
            let mut expected = vec![a.clone(), b.clone()];
            expected.sort();
            assert_eq!(patients, expected, "{action}");
        }
    })
    .await;
}

#[tokio::test]
async fn distinct_review_is_not_proposed_again_and_fictitious_is_never_linked() {
    both(async |e: Env| {
        let a = upsert(&e, anne(CHU_BREST, "B1")).await[0]
            .regional_id
            .clone();
        let mut homon = anne(CHU_RENNES, "R1");
        homon.ins = None;
        homon.status = IdentityStatus::Prov;
        homon.attributes.homonym = true;
        let effects = upsert(&e, homon).await;
        let review = e.index.open_reviews(10).await.unwrap()[0].id;
        e.index
            .resolve_review(&actor(), review, Resolution::Distinct)
            .await
            .unwrap();
        assert_ne!(effects[0].regional_id, a);

        let mut ficti = anne(CH_LORIENT, "F1");
        ficti.ins = None;
        ficti.status = IdentityStatus::Prov;
        ficti.attributes.fictitious = true;
        let effects = upsert(&e, ficti).await;
        assert_eq!(effects.len(), 1, "no link, no review: {effects:?}");
        assert_eq!(effects[0].action, "patient.create");
        let f = effects[0].regional_id.clone();
        assert!(matches!(
            e.index.merge(&actor(), &a, &f).await,
            Err(IndexError::Identity(
                megalis_identity::IdentityError::FictitiousNotLinkable
            ))
        ));
    })
    .await;
}

#[tokio::test]
async fn strict_trait_change_downgrades_and_history_is_kept() {
    both(async |e: Env| {
        let a = upsert(&e, anne(CHU_BREST, "B1")).await[0]
            .regional_id
            .clone();
        let mut changed = anne(CHU_BREST, "B1");
        changed.demographics.traits.birthplace = Some("29232".into());
        let effects = upsert(&e, changed).await;
        assert_eq!(effects[0].action, "patient.update");
        assert!(
            effects[0].detail.contains("QUAL → VALI"),
            "{}",
            effects[0].detail
        );
        let p = e.index.patient(&a).await.unwrap().unwrap();
        assert_eq!(p.golden.status, IdentityStatus::Vali);
        assert!(
            p.golden.shareable_ins().is_none(),
            "INS not shared once downgraded"
        );
        let b1 = SourceId {
            authority: CHU_BREST.into(),
            local_id: "B1".into(),
        };
        let history = e.index.history(&b1).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(
            history[0].3.demographics.traits.birthplace.as_deref(),
            Some("29019")
        );
        assert_eq!(history[0].3.status, IdentityStatus::Qual);
    })
    .await;
}

#[tokio::test]
async fn conflicts_between_sources_are_surfaced() {
    both(async |e: Env| {
        let a = upsert(&e, anne(CHU_BREST, "B1")).await[0]
            .regional_id
            .clone();
        // Same INS retrieved from INSi: linked deterministically, though the birthplace differs.
        let mut other = anne(CHU_RENNES, "R1");
        other.status = IdentityStatus::Recup;
        other.demographics.traits.birthplace = Some("35238".into());
        assert_eq!(upsert(&e, other).await[0].regional_id, a);
        let p = e.index.patient(&a).await.unwrap().unwrap();
        assert_eq!(
            p.golden.demographics.traits.birthplace.as_deref(),
            Some("29019")
        );
        assert_eq!(p.golden.conflicts.len(), 1);
        assert_eq!(p.golden.conflicts[0].field, "birthplace");
    })
    .await;
}

#[tokio::test]
async fn redelivery_is_not_applied_twice_and_rejections_change_nothing() {
    both(async |e: Env| {
        let key = || MessageKey {
            sender: "HIS^CHU",
            control_id: "MSG1",
            ack: "ACK-1",
        };
        let changes = [Change::Upsert(anne(CHU_BREST, "B1"))];
        let first = e
            .index
            .apply(&actor(), &changes, Some(key()))
            .await
            .unwrap();
        assert!(matches!(first, Applied::Done(ref x) if x.len() == 1));
        let again = e
            .index
            .apply(&actor(), &changes, Some(key()))
            .await
            .unwrap();
        assert_eq!(again, Applied::Duplicate("ACK-1".into()));

        // A batch whose second change names an unknown record: nothing of it is applied.
        let before = audit_actions(&e.db).await.len();
        let bad = [
            Change::Upsert(anne(CHU_RENNES, "R9")),
            Change::MergeSources {
                survivor: SourceId {
                    authority: CHU_BREST.into(),
                    local_id: "B1".into(),
                },
                merged: SourceId {
                    authority: CHU_BREST.into(),
                    local_id: "UNKNOWN".into(),
                },
            },
        ];
        let err = e
            .index
            .apply(
                &actor(),
                &bad,
                Some(MessageKey {
                    sender: "HIS^CHU",
                    control_id: "MSG2",
                    ack: "ACK-2",
                }),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, IndexError::UnknownSource(ref s) if s.contains("UNKNOWN")),
            "{err}"
        );
        let r9 = SourceId {
            authority: CHU_RENNES.into(),
            local_id: "R9".into(),
        };
        assert_eq!(e.index.patient_of(&r9).await.unwrap(), None);
        assert_eq!(audit_actions(&e.db).await.len(), before);
        // Not remembered either: once corrected, the same control id is applied.
        let ok = e
            .index
            .apply(
                &actor(),
                &bad[..1],
                Some(MessageKey {
                    sender: "HIS^CHU",
                    control_id: "MSG2",
                    ack: "ACK-2",
                }),
            )
            .await
            .unwrap();
        assert!(matches!(ok, Applied::Done(_)));

        // Invalid content is refused before any write.
        let mut wrong = anne(CHU_RENNES, "R10");
        wrong.demographics.traits.birth_date = date!(2999 - 01 - 01);
        assert!(matches!(
            e.index
                .apply(&actor(), &[Change::Upsert(wrong)], None)
                .await,
            Err(IndexError::Identity(_))
        ));
    })
    .await;
}

/// Patient resources (active, merged, with and without a shareable INS) validate as FHIR R4
/// with an independent implementation (PyPI `fhir.resources`, R4B models, via `$MEGALIS_PYTHON`).
#[tokio::test]
async fn patient_resources_validate_as_fhir_r4() {
    let python = std::env::var("MEGALIS_PYTHON").expect(
        "MEGALIS_PYTHON is not set: create a venv with `pip install -r tests/requirements.txt` \
         and export MEGALIS_PYTHON=/path/to/venv/bin/python",
    );
    let e = env(Backend::Sqlite).await;
    let a = upsert(&e, anne(CHU_BREST, "B1")).await[0]
        .regional_id
        .clone();
    let mut homon = anne(CHU_RENNES, "R1");
    homon.ins = None;
    homon.status = IdentityStatus::Prov;
    homon.attributes.homonym = true;
    let b = upsert(&e, homon).await[0].regional_id.clone();
    let system = "urn:oid:1.2.250.1.999.1";
    let before = megalis_identity_index::fhir::patient_resource(
        &e.index.patient(&b).await.unwrap().unwrap(),
        system,
    );
    e.index.merge(&actor(), &a, &b).await.unwrap();
    let qual = megalis_identity_index::fhir::patient_resource(
        &e.index.patient(&a).await.unwrap().unwrap(),
        system,
    );
    let merged = megalis_identity_index::fhir::patient_resource(
        &e.index.patient(&b).await.unwrap().unwrap(),
        system,
    );
    // INS only for the QUAL identity.
    let has_ins = |r: &serde_json::Value| {
        r["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["system"] == "urn:oid:1.2.250.1.213.1.4.8")
    };
    assert!(has_ins(&qual));
    assert!(!has_ins(&before));
    assert_eq!(merged["link"][0]["type"], "replaced-by");
    let resources = serde_json::json!([before, qual, merged]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/tests/e2e/python/validate_fhir.py"
    );
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(resources.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn search_match_and_cross_reference() {
    use megalis_identity_index::search::{IdentifierQuery, MatchGrade, PatientQuery};
    both(async |e: Env| {
        let anne_id = upsert(&e, anne(CHU_BREST, "B1")).await[0]
            .regional_id
            .clone();
        let mut twin = anne(CH_LORIENT, "L1");
        twin.ins = Some(ins("2690229019124"));
        twin.demographics.traits.birth_first_names = vec!["Soizic".into()];
        twin.demographics.used_name = None;
        let twin_id = upsert(&e, twin).await[0].regional_id.clone();
        let mut yann = anne(CHU_RENNES, "R9");
        yann.ins = None;
        yann.status = IdentityStatus::Prov;
        yann.demographics.traits.birth_name = "Kerjean".into();
        yann.demographics.traits.birth_first_names = vec!["Yann".into()];
        yann.demographics.traits.sex = Sex::Male;
        yann.demographics.traits.birth_date = date!(1990 - 07 - 01);
        yann.demographics.used_name = None;
        let yann_id = upsert(&e, yann.clone()).await[0].regional_id.clone();

        let search = |q: PatientQuery| {
            let index = e.index.clone();
            async move {
                let page = index
                    .search(&PatientQuery { count: 20, ..q })
                    .await
                    .unwrap();
                let mut ids: Vec<String> =
                    page.patients.into_iter().map(|p| p.regional_id).collect();
                ids.sort();
                (page.total, ids)
            }
        };
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        // Family prefix, accents, case and spaces ignored; birth or used name.
        let (n, ids) = search(PatientQuery {
            family: Some("le gof".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(
            (n, ids),
            (2, sorted(vec![anne_id.clone(), twin_id.clone()]))
        );
        let (_, ids) = search(PatientQuery {
            family: Some("MORVAN".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(ids, vec![anne_id.clone()]);
        let (_, ids) = search(PatientQuery {
            family: Some("le goff".into()),
            given: Some("soiz".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(ids, vec![twin_id.clone()]);
        let (_, ids) = search(PatientQuery {
            family: Some("k".into()),
            birth_date_from: Some("1990-01-01".into()),
            birth_date_to: Some("1991-01-01".into()),
            gender: Some("male"),
            ..Default::default()
        })
        .await;
        assert_eq!(ids, vec![yann_id.clone()]);
        // Identifiers: a source's IPP, the INS, the regional id; a value without a system.
        let (_, ids) = search(PatientQuery {
            identifiers: vec![IdentifierQuery::Source(SourceId {
                authority: CHU_RENNES.into(),
                local_id: "R9".into(),
            })],
            ..Default::default()
        })
        .await;
        assert_eq!(ids, vec![yann_id.clone()]);
        let nir = with_key("2690229019124").unwrap();
        let (_, ids) = search(PatientQuery {
            identifiers: vec![IdentifierQuery::Ins(nir.clone())],
            ..Default::default()
        })
        .await;
        assert_eq!(ids, vec![twin_id.clone()]);
        let (_, ids) = search(PatientQuery {
            identifiers: vec![IdentifierQuery::Any("B1".into())],
            ..Default::default()
        })
        .await;
        assert_eq!(ids, vec![anne_id.clone()]);
        // Caller text is only ever a bound argument.
        let (n, _) = search(PatientQuery {
            identifiers: vec![IdentifierQuery::Any("' OR '1'='1".into())],
            ..Default::default()
        })
        .await;
        assert_eq!(n, 0);
        let (n, _) = search(PatientQuery {
            family: Some("x' OR 1=1; --".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(n, 0);
        // Paging.
        let page = e
            .index
            .search(&PatientQuery {
                family: Some("le".into()),
                count: 1,
                offset: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!((page.total, page.patients.len()), (2, 1));

        // $match: the same person typed differently is certain; her twin is not.
        let mut probe = anne(CHU_RENNES, "");
        probe.ins = None;
        probe.status = IdentityStatus::Prov;
        probe.demographics.traits.birth_name = "LE GOFF".into();
        let found = e.index.find_matches(&probe, 10, false).await.unwrap();
        assert_eq!(found[0].patient.regional_id, anne_id);
        assert_eq!(found[0].grade, MatchGrade::Certain, "{:?}", found[0]);
        assert!(found[0].score > 0.99);
        assert!(
            found
                .iter()
                .all(|m| m.patient.regional_id != twin_id || m.grade != MatchGrade::Certain),
            "the twin is never a certain match"
        );
        let only = e.index.find_matches(&probe, 10, true).await.unwrap();
        assert!(only.iter().all(|m| m.grade == MatchGrade::Certain));
        let mut impossible = probe.clone();
        impossible.demographics.traits.birth_date = date!(2999 - 01 - 01);
        assert!(e.index.find_matches(&impossible, 10, false).await.is_err());

        // Cross-reference follows a merge to the survivor.
        let merge = e.index.merge(&actor(), &anne_id, &yann_id).await.unwrap();
        let r9 = IdentifierQuery::Source(SourceId {
            authority: CHU_RENNES.into(),
            local_id: "R9".into(),
        });
        assert_eq!(
            e.index.resolve(&r9).await.unwrap().unwrap().regional_id,
            anne_id
        );
        let by_old_id = e
            .index
            .resolve(&IdentifierQuery::Regional(yann_id.clone()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_old_id.regional_id, anne_id);
        // A merged patient is not listed by a name search, unless asked for.
        let (_, ids) = search(PatientQuery {
            family: Some("kerjean".into()),
            ..Default::default()
        })
        .await;
        assert!(ids.is_empty());
        let (_, ids) = search(PatientQuery {
            family: Some("kerjean".into()),
            active: Some(false),
            ..Default::default()
        })
        .await;
        assert_eq!(ids, vec![yann_id.clone()]);
        e.index.unmerge(&actor(), merge).await.unwrap();
        assert_eq!(
            e.index.resolve(&r9).await.unwrap().unwrap().regional_id,
            yann_id
        );
        assert!(e.index.knows_authority(CHU_RENNES).await.unwrap());
        assert!(!e.index.knows_authority("1.2.3").await.unwrap());
    })
    .await;
}
