//! Hospital stays from the ADT feed make the care team (issue 5): the doctors of PV1 of an
//! A01 join the patient's care team, an A03 ends the stay (plus the follow-up period), an A11
//! cancels it, an A13 reopens it, an A47 keeps it with the renamed record; bad stays get an AE
//! that names PV1. Checked over real MLLP on both backends, through the sharing decision.

use std::sync::Arc;

use megalis_audit::{AuditLog, AuditSettings, SigningKey};
use megalis_identity_index::mllp::{MllpSettings, serve};
use megalis_identity_index::{IndexSettings, PatientIndex};
use megalis_sharing::{
    AccessRequest, Action, CareLinkSource, Purpose, Reason, Requester, Resource, SharingSettings,
    SharingStore, decide,
};
use megalis_store::Backend;
use megalis_testkit::fresh_database;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BREST: &str = "1.2.250.1.71.4.2.2.290000017";
const DR_LE_GALL: &str = "810001234567";
const DR_MORVAN: &str = "810009876543";
const DAY: i64 = 86_400_000_000;

/// A message of `trigger` for IPP `ipp`, with a PV1 whose fields are set by position.
fn adt(trigger: &str, control: &str, ipp: &str, pv1: &[(usize, &str)]) -> String {
    let mut fields = vec![String::new(); 46];
    fields[0] = "PV1".into();
    fields[2] = "I".into();
    for (n, v) in pv1 {
        fields[*n] = v.to_string();
    }
    format!(
        "MSH|^~\\&|ORBIS|CHU_BREST|MEGALIS|ARS_BZH|20261120101500+0100||ADT^{trigger}^ADT_A01|{control}|P|2.5\r\
         EVN|{trigger}|20261120101500+0100\r\
         PID|||{ipp}^^^CHU&{BREST}&ISO^PI||LE GOFF^ANNE^^^^^L||19690214|F|||^^^^^^BDL^^29019{}PROV\r\
         {}\r",
        "|".repeat(21),
        fields.join("|")
    )
}

fn stay(control: &str, ipp: &str, visit: &str) -> String {
    adt(
        "A01",
        control,
        ipp,
        &[
            (
                7,
                &format!(
                    "{DR_LE_GALL}^LE GALL^Anne^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO~DR042^INTERNE"
                ),
            ),
            (8, &format!("{DR_MORVAN}^MORVAN^Yann")),
            (19, visit),
            (44, "20261120093000+0100"),
        ],
    )
}

async fn exchange(stream: &mut TcpStream, msg: &str) -> String {
    let mut payload = vec![0x0b];
    payload.extend_from_slice(msg.as_bytes());
    payload.extend_from_slice(&[0x1c, 0x0d]);
    stream.write_all(&payload).await.unwrap();
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        stream.read_exact(&mut byte).await.unwrap();
        out.push(byte[0]);
        if out.ends_with(&[0x1c, 0x0d]) {
            break;
        }
    }
    String::from_utf8(out[1..out.len() - 2].to_vec()).unwrap()
}

fn segment<'a>(ack: &'a str, id: &str) -> &'a str {
    ack.split('\r')
        .find(|s| s.starts_with(id))
        .unwrap_or_else(|| panic!("no {id} in {ack:?}"))
}

async fn care_team_reason(
    sharing: &SharingStore,
    regional_id: &str,
    who: &str,
    now: i64,
) -> Reason {
    let facts = sharing.facts(regional_id, now).await.unwrap();
    decide(&AccessRequest {
        requester: &Requester::Professional {
            national_id: who.into(),
            second_factor: true,
            active: true,
        },
        resource: &Resource::ClinicalRecord,
        action: Action::Read,
        purpose: Purpose::Care,
        facts: &facts,
        now,
    })
    .reason
}

#[tokio::test]
async fn hospital_stays_make_the_care_team() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (_dir, db) = fresh_database(backend).await;
        let files = tempfile::tempdir().unwrap();
        let audit_settings = AuditSettings::for_data_dir(files.path());
        let key = SigningKey::load_or_create(&audit_settings.signing_key_path).unwrap();
        let audit = AuditLog::start(db.clone(), key, audit_settings);
        let index = PatientIndex::new(db.clone(), audit, IndexSettings::default()).unwrap();
        let sharing = SharingStore::new(db.clone(), SharingSettings::default());
        let settings = MllpSettings {
            bindings: [("ORBIS|CHU_BREST".to_string(), vec![BREST.to_string()])].into(),
            test_mode: false,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, index.clone(), Arc::new(settings), async {
            let _ = stopped.await;
        }));
        let mut c = TcpStream::connect(addr).await.unwrap();

        // Admission with two doctors with national ids (and one local code, ignored).
        let ack = exchange(&mut c, &stay("M1", "IPP1", "V1")).await;
        assert_eq!(segment(&ack, "MSA|"), "MSA|AA|M1", "{ack}");
        let patient = index
            .resolve(&megalis_identity_index::search::IdentifierQuery::Source(
                megalis_identity_index::identity::SourceId {
                    authority: BREST.into(),
                    local_id: "IPP1".into(),
                },
            ))
            .await
            .unwrap()
            .unwrap()
            .regional_id;
        let admitted =
            megalis_identity_index::encounter::parse_dtm("20261120093000+0100", "x").unwrap();
        let now = admitted + DAY;
        for doctor in [DR_LE_GALL, DR_MORVAN] {
            assert_eq!(
                care_team_reason(&sharing, &patient, doctor, now).await,
                Reason::CareTeam
            );
        }
        let team = sharing.care_team(&patient).await.unwrap();
        assert_eq!(team.len(), 2, "{team:?}");
        assert!(
            team.iter()
                .all(|l| l.source == CareLinkSource::Encounter && l.start == admitted)
        );
        assert!(
            team.iter()
                .any(|l| l.detail.contains("attending") && l.detail.contains("V1"))
        );
        // Redelivery changes nothing.
        let again = exchange(&mut c, &stay("M1", "IPP1", "V1")).await;
        assert_eq!(segment(&again, "MSA|"), "MSA|AA|M1");
        assert_eq!(sharing.care_team(&patient).await.unwrap().len(), 2);

        // Discharge: the team lasts the follow-up period after it, not more.
        let discharge = adt("A03", "M2", "IPP1", &[(19, "V1")]);
        let ack = exchange(&mut c, &discharge).await;
        assert_eq!(segment(&ack, "MSA|"), "MSA|AA|M2", "{ack}");
        let discharged =
            megalis_identity_index::encounter::parse_dtm("20261120101500+0100", "x").unwrap();
        assert!(
            sharing
                .care_team(&patient)
                .await
                .unwrap()
                .iter()
                .all(|l| l.end == Some(discharged + 90 * DAY))
        );
        assert_eq!(
            care_team_reason(&sharing, &patient, DR_LE_GALL, discharged + 89 * DAY).await,
            Reason::CareTeam
        );
        assert_eq!(
            care_team_reason(&sharing, &patient, DR_LE_GALL, discharged + 91 * DAY).await,
            Reason::NotInCareTeam
        );
        // Cancelled discharge: the stay goes on.
        let ack = exchange(&mut c, &adt("A13", "M3", "IPP1", &[(19, "V1")])).await;
        assert_eq!(segment(&ack, "MSA|"), "MSA|AA|M3", "{ack}");
        assert_eq!(
            care_team_reason(&sharing, &patient, DR_LE_GALL, discharged + 400 * DAY).await,
            Reason::CareTeam
        );

        // A second stay, then its admission is cancelled: its doctor never was in the team.
        let second = adt(
            "A01",
            "M4",
            "IPP1",
            &[(7, "810005555555^TANGUY^Loic"), (19, "V2")],
        );
        assert_eq!(
            segment(&exchange(&mut c, &second).await, "MSA|"),
            "MSA|AA|M4"
        );
        assert_eq!(
            care_team_reason(&sharing, &patient, "810005555555", now).await,
            Reason::CareTeam
        );
        let cancel = adt("A11", "M5", "IPP1", &[(19, "V2")]);
        assert_eq!(
            segment(&exchange(&mut c, &cancel).await, "MSA|"),
            "MSA|AA|M5"
        );
        assert_eq!(
            care_team_reason(&sharing, &patient, "810005555555", now).await,
            Reason::NotInCareTeam
        );

        // Refusals, each an AE naming PV1, and nothing applied.
        let no_visit = adt("A01", "M6", "IPP1", &[(7, DR_LE_GALL)]);
        let ack = exchange(&mut c, &no_visit).await;
        assert!(segment(&ack, "MSA|").starts_with("MSA|AE|M6"), "{ack}");
        assert!(segment(&ack, "ERR|").contains("PV1^1^19"), "{ack}");
        let other_patient = stay("M7", "IPP2", "V1");
        let ack = exchange(&mut c, &other_patient).await;
        assert!(segment(&ack, "MSA|").starts_with("MSA|AE|M7"), "{ack}");
        assert!(segment(&ack, "ERR|").contains("PV1^1^19"), "{ack}");
        assert!(
            index
                .resolve(&megalis_identity_index::search::IdentifierQuery::Source(
                    megalis_identity_index::identity::SourceId {
                        authority: BREST.into(),
                        local_id: "IPP2".into(),
                    },
                ))
                .await
                .unwrap()
                .is_none(),
            "the identity of a refused message is not applied either (all or nothing)"
        );
        let unknown = adt("A03", "M8", "IPP9", &[(19, "V9")]);
        let ack = exchange(&mut c, &unknown).await;
        assert!(segment(&ack, "MSA|").starts_with("MSA|AE|M8"), "{ack}");
        let no_pv1 = "MSH|^~\\&|ORBIS|CHU_BREST|MEGALIS|ARS_BZH|20261120||ADT^A03|M9|P|2.5\r\
                      PID|||IPP1^^^CHU&1.2.250.1.71.4.2.2.290000017&ISO^PI\r";
        let ack = exchange(&mut c, no_pv1).await;
        // A missing segment is a structural error: AR, as for the identity events.
        assert!(segment(&ack, "MSA|").starts_with("MSA|AR|M9"), "{ack}");
        assert!(segment(&ack, "ERR|").starts_with("ERR||PV1|100"), "{ack}");
        let bad_date = adt(
            "A01",
            "M10",
            "IPP1",
            &[(7, DR_LE_GALL), (19, "V3"), (44, "2026-11-20")],
        );
        let ack = exchange(&mut c, &bad_date).await;
        assert!(segment(&ack, "ERR|").contains("PV1^1^44"), "{ack}");

        // A47: the hospital corrects the IPP; the stays follow the record.
        let a47 = format!(
            "MSH|^~\\&|ORBIS|CHU_BREST|MEGALIS|ARS_BZH|20261121||ADT^A47^ADT_A30|M11|P|2.5\r\
             PID|||IPP1B^^^CHU&{BREST}&ISO^PI\r\
             MRG|IPP1^^^CHU&{BREST}&ISO^PI\r"
        );
        assert_eq!(segment(&exchange(&mut c, &a47).await, "MSA|"), "MSA|AA|M11");
        assert_eq!(
            care_team_reason(&sharing, &patient, DR_MORVAN, now).await,
            Reason::CareTeam
        );

        let _ = stop.send(());
        server.await.unwrap();
    }
}
