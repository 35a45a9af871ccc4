//! HL7 aECG reading against the hand-written fixture and broken variants of it.

use megalis_waveforms::aecg::{self, Aecg};
use megalis_waveforms::{Format, Modality, TimeWindow, WaveformError};

const FIXTURE: &str = include_str!("fixtures/aecg_rhythm.xml");

fn parse(doc: &str) -> Result<Aecg, WaveformError> {
    aecg::parse(doc.as_bytes())
}

#[test]
fn rhythm_leads_in_standard_order_with_physical_values() {
    let ecg = parse(FIXTURE).unwrap();
    let labels: Vec<&str> = ecg.leads.iter().map(|l| l.channel.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"
        ]
    );
    assert_eq!(ecg.leads[3].code, "MDC_ECG_LEAD_AVR");
    for lead in &ecg.leads {
        assert_eq!(lead.channel.sampling_rate, 500.0);
        assert_eq!(lead.channel.unit, "uV");
        assert_eq!(
            lead.channel.samples.len(),
            1000,
            "the representative beat is not mixed in"
        );
    }
    // R peak at 0.35 s (sample 175): digits 214 (II) and -166 (aVR), × 5 µV.
    assert_eq!(ecg.leads[1].channel.samples[175], 1070.0);
    assert_eq!(ecg.leads[3].channel.samples[175], -830.0);
    assert_eq!(ecg.start.unwrap().to_string(), "2026-11-24 9:30:15.0");
    assert_eq!(ecg.duration(), 2.0);

    let s = ecg.summary();
    assert_eq!(s.format, Format::Aecg);
    assert_eq!(s.modality, Modality::Ecg);
    assert_eq!(s.channels.len(), 12);
    assert_eq!(s.duration, 2.0);
    assert!(
        s.patient_identification.is_empty(),
        "the subject is not read"
    );
}

#[test]
fn origin_scale_and_units() {
    let doc = FIXTURE
        .replacen(
            r#"<origin value="0" unit="uV"/>"#,
            r#"<origin value="0.5" unit="mV"/>"#,
            1,
        )
        .replacen(
            r#"<scale value="5" unit="uV"/>"#,
            r#"<scale value="2.5" unit="uV"/>"#,
            1,
        )
        .replacen(
            r#"<increment value="0.002" unit="s"/>"#,
            r#"<increment value="2" unit="ms"/>"#,
            1,
        );
    let ecg = parse(&doc).unwrap();
    let first = &ecg.leads[0].channel; // lead I, the first lead sequence of the file
    let digits: Vec<f64> = FIXTURE
        .split("<digits>")
        .nth(1)
        .unwrap()
        .split("</digits>")
        .next()
        .unwrap()
        .split_whitespace()
        .map(|d| d.parse().unwrap())
        .collect();
    assert_eq!(first.sampling_rate, 500.0);
    for (v, d) in first.samples.iter().zip(&digits) {
        assert!((f64::from(*v) - (500.0 + 2.5 * d)).abs() < 1e-3);
    }
}

#[test]
fn windows_slice_and_clip() {
    let ecg = parse(FIXTURE).unwrap();
    let w = ecg.window(TimeWindow::new(0.5, 10.0).unwrap()).unwrap();
    assert_eq!(w.window.duration(), 1.5);
    assert_eq!(w.channels[1].samples.len(), 750);
    assert_eq!(
        w.channels[1].samples[175],
        ecg.leads[1].channel.samples[250 + 175]
    );
    assert_eq!(w.modality, Modality::Ecg);
    assert!(matches!(
        ecg.window(TimeWindow::new(2.0, 1.0).unwrap()),
        Err(WaveformError::InvalidWindow(_))
    ));
}

/// Whether an error is the one expected.
type Check = fn(&WaveformError) -> bool;

#[test]
fn broken_documents_are_refused() {
    let cases: Vec<(&str, String, Check)> = vec![
        (
            "other root",
            FIXTURE.replace("AnnotatedECG", "ClinicalDocument"),
            |e| matches!(e, WaveformError::InvalidAecg(m) if m.contains("ClinicalDocument")),
        ),
        (
            "no rhythm",
            FIXTURE.replace(r#"code="RHYTHM""#, r#"code="OTHER""#),
            |e| matches!(e, WaveformError::InvalidAecg(m) if m.contains("RHYTHM")),
        ),
        ("truncated", FIXTURE[..FIXTURE.len() / 2].to_string(), |e| {
            matches!(e, WaveformError::Xml { .. })
        }),
        (
            "mismatched tags",
            FIXTURE.replacen("</digits>", "</digit>", 1),
            |e| matches!(e, WaveformError::Xml { .. }),
        ),
        (
            "bad digit",
            FIXTURE.replacen("<digits>", "<digits>12a ", 1),
            |e| matches!(e, WaveformError::InvalidAecg(m) if m.contains("12a")),
        ),
        (
            "no time",
            FIXTURE.replace("TIME_ABSOLUTE", "TIME_OTHER"),
            |e| matches!(e, WaveformError::InvalidAecg(m) if m.contains("TIME_ABSOLUTE")),
        ),
        (
            "bad increment",
            FIXTURE.replacen(r#"value="0.002" unit="s""#, r#"value="0" unit="s""#, 1),
            |e| matches!(e, WaveformError::InvalidAecg(m) if m.contains("positive")),
        ),
        (
            "wrong value type",
            FIXTURE.replacen(r#"xsi:type="SLIST_PQ""#, r#"xsi:type="GLIST_PQ""#, 1),
            |e| matches!(e, WaveformError::InvalidAecg(m) if m.contains("SLIST_PQ")),
        ),
        ("not XML", "ECG,I,II\n1,2,3".to_string(), |e| {
            matches!(e, WaveformError::InvalidAecg(_) | WaveformError::Xml { .. })
        }),
    ];
    for (name, doc, check) in cases {
        let err = parse(&doc).unwrap_err();
        assert!(check(&err), "{name}: unexpected {err:?}");
    }
}

#[test]
fn external_entities_are_never_expanded() {
    // An XXE attempt: quick-xml does not read DTDs, so the entity is unknown and the digits
    // holding it are refused; nothing is fetched.
    let doc = FIXTURE.replacen(
        "<AnnotatedECG",
        "<!DOCTYPE AnnotatedECG [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<AnnotatedECG",
        1,
    );
    let doc = doc.replacen("<digits>", "<digits>&xxe; ", 1);
    let err = parse(&doc).unwrap_err();
    assert!(matches!(err, WaveformError::InvalidAecg(m) if m.contains("entity")));
}
