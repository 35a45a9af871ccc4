//! The MLLP listener over real TCP on both backends: AA after apply, redelivery, AE/AR with ERR,
//! framing errors with the connection kept usable, concurrent connections.

use std::sync::Arc;

use megalis_audit::{AuditLog, AuditSettings, SigningKey};
use megalis_identity::SourceId;
use megalis_identity_index::mllp::{MllpSettings, serve};
use megalis_identity_index::{IndexSettings, PatientIndex};
use megalis_store::Backend;
use megalis_testkit::fresh_database;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RENNES: &str = "1.2.250.1.71.4.2.2.350005179";

fn a28(control: &str, ipp: &str, first: &str) -> String {
    format!(
        "MSH|^~\\&|DXCARE|CHU_RENNES|MEGALIS|ARS_BZH|20261125120000||ADT^A28^ADT_A05|{control}|P|2.5\r\
         PID|||{ipp}^^^CHU&{RENNES}&ISO^PI||LE GOFF^{first}^^^^^L||19690214|F|||^^^^^^BDL^^29019{}PROV\r",
        "|".repeat(21)
    )
}

async fn exchange(stream: &mut TcpStream, payload: &[u8]) -> String {
    stream.write_all(payload).await.unwrap();
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        stream.read_exact(&mut byte).await.unwrap();
        out.push(byte[0]);
        if out.ends_with(&[0x1c, 0x0d]) {
            break;
        }
    }
    assert_eq!(out[0], 0x0b);
    String::from_utf8(out[1..out.len() - 2].to_vec()).unwrap()
}

fn framed(msg: &str) -> Vec<u8> {
    let mut v = vec![0x0b];
    v.extend_from_slice(msg.as_bytes());
    v.extend_from_slice(&[0x1c, 0x0d]);
    v
}

fn msa(ack: &str) -> String {
    ack.split('\r')
        .find(|s| s.starts_with("MSA|"))
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn identity_feed_over_mllp() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (_dir, db) = fresh_database(backend).await;
        let files = tempfile::tempdir().unwrap();
        let audit_settings = AuditSettings::for_data_dir(files.path());
        let key = SigningKey::load_or_create(&audit_settings.signing_key_path).unwrap();
        let audit = AuditLog::start(db.clone(), key, audit_settings);
        let index = PatientIndex::new(db, audit, IndexSettings::default()).unwrap();
        let settings = MllpSettings {
            bindings: [("DXCARE|CHU_RENNES".to_string(), vec![RENNES.to_string()])].into(),
            test_mode: false,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, index.clone(), Arc::new(settings), async {
            let _ = stopped.await;
        }));

        let mut c = TcpStream::connect(addr).await.unwrap();
        let first = exchange(&mut c, &framed(&a28("M1", "IPP1", "ANNE"))).await;
        assert_eq!(msa(&first), "MSA|AA|M1");
        let ipp1 = SourceId {
            authority: RENNES.into(),
            local_id: "IPP1".into(),
        };
        let patient = index
            .patient_of(&ipp1)
            .await
            .unwrap()
            .expect("applied before AA");

        // Redelivery: the same acknowledgement, nothing applied again.
        let again = exchange(&mut c, &framed(&a28("M1", "IPP1", "ANNE"))).await;
        assert_eq!(again, first);
        assert_eq!(index.history(&ipp1).await.unwrap().len(), 1);

        // Garbage outside a frame, then an unknown trigger, then bad content: each answered,
        // and the connection still works afterwards.
        let junk = exchange(&mut c, b"hello\r\n").await;
        assert!(
            junk.contains("MSA|AR|") && junk.contains("ERR||MSH|100"),
            "{junk}"
        );
        let z99 = exchange(
            &mut c,
            &framed(&a28("M2", "IPP2", "X").replace("ADT^A28", "ADT^Z99")),
        )
        .await;
        assert_eq!(msa(&z99), "MSA|AR|M2");
        assert!(z99.contains("ERR||MSH^1^9|201"), "{z99}");
        let date = exchange(
            &mut c,
            &framed(&a28("M3", "IPP3", "X").replace("19690214", "19690231")),
        )
        .await;
        assert_eq!(msa(&date), "MSA|AE|M3");
        assert!(date.contains("ERR||PID^1^7|102"), "{date}");
        let a40 = format!(
            "MSH|^~\\&|DXCARE|CHU_RENNES|MEGALIS|ARS_BZH|20261125120000||ADT^A40^ADT_A39|M4|P|2.5\r\
             PID|||IPP1^^^CHU&{RENNES}&ISO^PI\rMRG|NOPE^^^CHU&{RENNES}&ISO^PI\r"
        );
        let unknown = exchange(&mut c, &framed(&a40)).await;
        assert_eq!(msa(&unknown), "MSA|AE|M4");
        assert!(unknown.contains("ERR||MRG^1^1|204"), "{unknown}");
        let other = exchange(
            &mut c,
            &framed(&a28("M5", "IPP1", "ANNE").replace(RENNES, "1.2.250.1.71.4.2.2.290000017")),
        )
        .await;
        assert_eq!(msa(&other), "MSA|AE|M5");
        assert!(other.contains("ERR||PID^1^3|204"), "{other}");
        // Nothing of the rejected messages changed what was accepted.
        assert_eq!(
            index.patient_of(&ipp1).await.unwrap(),
            Some(patient.clone())
        );
        assert_eq!(index.history(&ipp1).await.unwrap().len(), 1);

        // Eight connections at once, five messages each.
        let mut tasks = Vec::new();
        for conn in 0..8 {
            tasks.push(tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                for i in 0..5 {
                    let id = format!("C{conn}-{i}");
                    let ack = exchange(
                        &mut s,
                        &framed(&a28(&id, &format!("P{conn}-{i}"), "JEANNE")),
                    )
                    .await;
                    assert_eq!(msa(&ack), format!("MSA|AA|{id}"));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let last = exchange(&mut c, &framed(&a28("M6", "IPP1", "ANNE"))).await;
        assert_eq!(msa(&last), "MSA|AA|M6");

        // A47: the hospital corrects IPP1 to IPP1B; same regional patient, history follows.
        let a47 = |control: &str, to: &str, from: &str| {
            format!(
                "MSH|^~\\&|DXCARE|CHU_RENNES|MEGALIS|ARS_BZH|20261125120000||ADT^A47^ADT_A30|{control}|P|2.5\r\
                 PID|||{to}^^^CHU&{RENNES}&ISO^PI||LE GOFF^ANNE^^^^^L||19690214|F\rMRG|{from}^^^CHU&{RENNES}&ISO^PI\r"
            )
        };
        let renamed = exchange(&mut c, &framed(&a47("M7", "IPP1B", "IPP1"))).await;
        assert_eq!(msa(&renamed), "MSA|AA|M7", "{renamed}");
        let ipp1b = SourceId {
            authority: RENNES.into(),
            local_id: "IPP1B".into(),
        };
        assert_eq!(index.patient_of(&ipp1).await.unwrap(), None);
        assert_eq!(
            index.patient_of(&ipp1b).await.unwrap(),
            Some(patient.clone())
        );
        let history = index.history(&ipp1b).await.unwrap();
        assert!(
            history.last().unwrap().2.starts_with("renamed from IPP1^"),
            "{history:?}"
        );
        // Renaming onto an identifier in use is refused (an A40 is the message for that), and
        // renaming an unknown identifier names MRG-1.
        let taken = exchange(&mut c, &framed(&a47("M8", "P0-0", "IPP1B"))).await;
        assert_eq!(msa(&taken), "MSA|AE|M8");
        assert!(taken.contains("ERR||PID^1^3|205"), "{taken}");
        let unknown = exchange(&mut c, &framed(&a47("M9", "IPP9", "NOPE"))).await;
        assert_eq!(msa(&unknown), "MSA|AE|M9");
        assert!(unknown.contains("ERR||MRG^1^1|204"), "{unknown}");
        assert_eq!(
            index.patient_of(&ipp1b).await.unwrap(),
            Some(patient.clone())
        );
        stop.send(()).unwrap();
        server.await.unwrap();
    }
}
