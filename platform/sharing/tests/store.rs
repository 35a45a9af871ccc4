//! The sharing records on both backends: directives, declared and referred care
//! relationships, hospital encounters joined through the identity index, merges, emergency
//! access and its review — and the decision they feed, re-read on every request.

use megalis_sharing::store::is_national_id;
use megalis_sharing::{
    AccessRequest, Action, CareLinkSource, Confidentiality, DirectiveKind, DocumentFacts,
    NewCareLink, NewDirective, Purpose, Reason, Requester, Resource, SharingError, SharingSettings,
    SharingStore, decide,
};
use megalis_store::{Backend, Database, with_pool};
use megalis_testkit::fresh_database;

const DR_LE_GALL: &str = "810001234567";
const DR_MORVAN: &str = "810009876543";
const DR_TANGUY: &str = "810005555555";
const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
const NOW: i64 = 1_790_000_000_000_000;

async fn exec(db: &Database, sql: &str) {
    with_pool!(db, pool => sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
    .unwrap();
}

/// Two regional patients, the second merged into the first, each with one hospital record.
async fn patients(db: &Database) {
    for (seq, id, merged) in [
        (1, "BZH1", "NULL"),
        (2, "BZH2", "'BZH1'"),
        (3, "BZH3", "NULL"),
    ] {
        exec(
            db,
            &format!(
                "INSERT INTO identity_patient (regional_id, seq, status, golden, merged_into, \
                 created_at_us, updated_at_us) VALUES ('{id}', {seq}, 'PROV', '{{}}', {merged}, 0, 0)"
            ),
        )
        .await;
    }
    // After the merge, BZH2's hospital record links to the survivor BZH1.
    for (ipp, id) in [("IPP-1", "BZH1"), ("IPP-2", "BZH1"), ("IPP-3", "BZH3")] {
        exec(
            db,
            &format!(
                "INSERT INTO identity_source (authority, local_id, regional_id, status, record, \
                 version, updated_at_us) VALUES ('chu-brest', '{ipp}', '{id}', 'PROV', '{{}}', 1, 0)"
            ),
        )
        .await;
    }
}

fn pro(national_id: &str) -> Requester {
    Requester::Professional {
        national_id: national_id.into(),
        second_factor: true,
        active: true,
    }
}

async fn reason(store: &SharingStore, who: &str, patient: &str, now: i64) -> Reason {
    let facts = store.facts(patient, now).await.unwrap();
    let doc = Resource::Document(DocumentFacts {
        id: "doc-1".into(),
        author: Some("810003333333".into()),
        confidentiality: Confidentiality::Normal,
    });
    decide(&AccessRequest {
        requester: &pro(who),
        resource: &doc,
        action: Action::Read,
        purpose: Purpose::Care,
        facts: &facts,
        now,
    })
    .reason
}

fn directive(kind: DirectiveKind) -> NewDirective {
    NewDirective {
        regional_id: "BZH1".into(),
        kind,
        practitioner: None,
        document_id: None,
        start: NOW - DAY,
        end: None,
        note: String::new(),
        recorded_by: "patient:BZH1".into(),
    }
}

async fn scenario(backend: Backend) {
    let (_dir, db) = fresh_database(backend).await;
    patients(&db).await;
    let store = SharingStore::new(db.clone(), SharingSettings::default());

    // Nobody is in the team yet.
    assert_eq!(
        reason(&store, DR_LE_GALL, "BZH1", NOW).await,
        Reason::NotInCareTeam
    );

    // A hospital encounter on the record merged into BZH1 counts for BZH1, and lasts the
    // follow-up period after discharge.
    exec(
        &db,
        &format!(
            "INSERT INTO encounter_participant (authority, visit_number, practitioner, role, \
             local_id, start_us, end_us, updated_at_us) VALUES \
             ('chu-brest', 'V1', '{DR_LE_GALL}', 'attending', 'IPP-2', {}, {}, 0)",
            NOW - 10 * DAY,
            NOW - 5 * DAY
        ),
    )
    .await;
    assert_eq!(store.lineage("BZH1").await.unwrap(), vec!["BZH1", "BZH2"]);
    assert_eq!(
        reason(&store, DR_LE_GALL, "BZH1", NOW).await,
        Reason::CareTeam
    );
    assert_eq!(
        reason(&store, DR_LE_GALL, "BZH1", NOW + 100 * DAY).await,
        Reason::NotInCareTeam,
        "90 days of follow-up after discharge, not more"
    );
    assert_eq!(
        store.patients_of(DR_LE_GALL, NOW).await.unwrap(),
        vec!["BZH1"]
    );

    // A declaration needs a real justification and a national id.
    let declaration = NewCareLink {
        regional_id: "BZH1".into(),
        practitioner: DR_MORVAN.into(),
        source: CareLinkSource::Declaration,
        justification: "ok".into(),
        referred_by: None,
        start: NOW - HOUR,
        end: None,
        created_by: "acct-morvan".into(),
    };
    assert!(matches!(
        store.add_care_link(&declaration, NOW).await,
        Err(SharingError::Invalid(_))
    ));
    let declared = store
        .add_care_link(
            &NewCareLink {
                justification: "Médecin traitant déclaré".into(),
                ..declaration.clone()
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        reason(&store, DR_MORVAN, "BZH1", NOW).await,
        Reason::CareTeam
    );

    // A referral only from a member of the team.
    let referral = NewCareLink {
        practitioner: DR_TANGUY.into(),
        source: CareLinkSource::Referral,
        justification: "Avis néphrologique demandé".into(),
        referred_by: Some("810007777777".into()),
        ..declaration.clone()
    };
    assert!(matches!(
        store.add_care_link(&referral, NOW).await,
        Err(SharingError::Refused(Reason::NotInCareTeam))
    ));
    store
        .add_care_link(
            &NewCareLink {
                referred_by: Some(DR_MORVAN.into()),
                ..referral
            },
            NOW,
        )
        .await
        .unwrap();
    let team = store.care_team("BZH1").await.unwrap();
    assert_eq!(team.len(), 3, "{team:?}");
    assert!(team.iter().any(|l| l.source == CareLinkSource::Encounter
        && l.detail.contains("V1")
        && l.id.is_none()));
    assert!(
        team.iter()
            .any(|l| l.source == CareLinkSource::Referral && l.detail.contains(DR_MORVAN))
    );

    // Ending the declaration takes effect on the next request.
    store
        .end_care_link("BZH1", declared, "acct-morvan", NOW)
        .await
        .unwrap();
    assert_eq!(
        reason(&store, DR_MORVAN, "BZH1", NOW + 1).await,
        Reason::NotInCareTeam
    );
    assert!(matches!(
        store.end_care_link("BZH3", declared, "x", NOW).await,
        Err(SharingError::NotFound(_))
    ));

    // Directives: the objection, recorded on the merged record, stops the team.
    let objection = store
        .record_directive(
            &NewDirective {
                regional_id: "BZH2".into(),
                ..directive(DirectiveKind::Objection)
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        reason(&store, DR_LE_GALL, "BZH1", NOW).await,
        Reason::PatientObjects
    );
    // Recording it twice keeps one.
    let again = store
        .record_directive(
            &NewDirective {
                regional_id: "BZH2".into(),
                ..directive(DirectiveKind::Objection)
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(again, objection);
    // Explicit consent to one professional after the objection.
    store
        .record_directive(
            &NewDirective {
                practitioner: Some(DR_LE_GALL.into()),
                ..directive(DirectiveKind::Consent)
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        reason(&store, DR_LE_GALL, "BZH1", NOW).await,
        Reason::ExplicitConsent
    );
    store
        .revoke_directive("BZH1", objection, "patient:BZH1", NOW)
        .await
        .unwrap();
    // Block: beats the encounter relationship.
    let block = store
        .record_directive(
            &NewDirective {
                practitioner: Some(DR_LE_GALL.into()),
                ..directive(DirectiveKind::Block)
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        reason(&store, DR_LE_GALL, "BZH1", NOW).await,
        Reason::BlockedByPatient
    );
    store
        .revoke_directive("BZH1", block, "patient:BZH1", NOW)
        .await
        .unwrap();
    // Mask: the masked document only.
    store
        .record_directive(
            &NewDirective {
                document_id: Some("doc-1".into()),
                ..directive(DirectiveKind::Mask)
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        reason(&store, DR_LE_GALL, "BZH1", NOW).await,
        Reason::DocumentMasked
    );
    let all = store.directives("BZH1", true).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all.iter().filter(|d| d.revoked_at.is_some()).count(), 2);
    assert_eq!(store.directives("BZH1", false).await.unwrap().len(), 2);
    // Another patient's directive cannot be revoked through this patient.
    assert!(matches!(
        store.revoke_directive("BZH3", objection, "x", NOW).await,
        Err(SharingError::NotFound(_))
    ));
    // Malformed directives.
    assert!(matches!(
        store
            .record_directive(&directive(DirectiveKind::Block), NOW)
            .await,
        Err(SharingError::Invalid(_))
    ));

    // Emergency access: a reason and a bounded duration, then it expires.
    assert!(matches!(
        store
            .declare_emergency("BZH3", DR_TANGUY, "urgent", None, "acct-tanguy", NOW)
            .await,
        Err(SharingError::Invalid(_))
    ));
    assert!(matches!(
        store
            .declare_emergency(
                "BZH3",
                DR_TANGUY,
                "Patient inconscient aux urgences",
                Some(48 * HOUR),
                "acct-tanguy",
                NOW
            )
            .await,
        Err(SharingError::Invalid(_))
    ));
    let e = store
        .declare_emergency(
            "BZH3",
            DR_TANGUY,
            "Patient inconscient aux urgences",
            None,
            "acct-tanguy",
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(e.end - e.start, 4 * HOUR);
    assert_eq!(
        reason(&store, DR_TANGUY, "BZH3", NOW + HOUR).await,
        Reason::Emergency
    );
    assert_eq!(
        reason(&store, DR_TANGUY, "BZH3", NOW + 5 * HOUR).await,
        Reason::NotInCareTeam
    );
    let facts = store.facts("BZH3", NOW + 5 * HOUR).await.unwrap();
    let expired = decide(&AccessRequest {
        requester: &pro(DR_TANGUY),
        resource: &Resource::ClinicalRecord,
        action: Action::Read,
        purpose: Purpose::Emergency,
        facts: &facts,
        now: NOW + 5 * HOUR,
    });
    assert_eq!(expired.reason, Reason::EmergencyExpired);
    // The officer's queue, then the review.
    let queue = store.emergencies_to_review().await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].reason, "Patient inconscient aux urgences");
    store
        .review_emergency(e.id, "officer", "Justifié", NOW + DAY)
        .await
        .unwrap();
    assert!(store.emergencies_to_review().await.unwrap().is_empty());
    assert!(
        store
            .review_emergency(e.id, "officer", "again", NOW)
            .await
            .is_err()
    );
    assert_eq!(store.emergencies_of("BZH3").await.unwrap().len(), 1);
    // An objection to emergency access, made beforehand, refuses the declaration.
    store
        .record_directive(
            &NewDirective {
                regional_id: "BZH3".into(),
                ..directive(DirectiveKind::EmergencyObjection)
            },
            NOW,
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .declare_emergency(
                "BZH3",
                DR_TANGUY,
                "Patient inconscient aux urgences",
                None,
                "acct-tanguy",
                NOW
            )
            .await,
        Err(SharingError::Refused(Reason::EmergencyObjected))
    ));
    assert_eq!(store.emergencies_of("BZH3").await.unwrap().len(), 1);
}

#[tokio::test]
async fn sharing_records_on_sqlite() {
    scenario(Backend::Sqlite).await;
}

#[tokio::test]
async fn sharing_records_on_postgres() {
    scenario(Backend::Postgres).await;
}

#[test]
fn professionals_ids() {
    assert!(is_national_id(DR_LE_GALL));
}
