//! Audit records and the hash chain over them: pure types and functions, no I/O.
//!
//! # Canonical encoding (version 1)
//!
//! Each record is hashed as `hash(N) = SHA-256(hash(N-1) ‖ E(N))`, where `hash(0)` is 32 zero
//! bytes and `E(N)` is the canonical encoding of record `N`: the concatenation, in this order, of
//!
//! | item                     | encoding |
//! |--------------------------|----------|
//! | domain tag               | `str("megalis.audit.record.v1")` |
//! | `seq`                    | 8 bytes, unsigned big-endian |
//! | `time_us`                | 8 bytes, signed (two's complement) big-endian, µs since 1970-01-01T00:00:00Z |
//! | `actor.subject`          | `str` |
//! | `actor.national_id`      | `opt` |
//! | `actor.organisation`     | `opt` |
//! | `actor.roles`            | 4 bytes big-endian count, then `str` of each role in the stored order |
//! | `action`                 | `str` |
//! | `object_type`            | `str` |
//! | `object_id`              | `opt` |
//! | `patient_id`             | `opt` |
//! | `purpose`                | `opt` |
//! | `outcome`                | `str` of `success`, `denied` or `failure` |
//! | `source_address`         | `opt` |
//! | `request_id`             | `opt` |
//! | `detail`                 | `opt` |
//!
//! where `str(s)` is the length of the UTF-8 bytes of `s` as 4 bytes big-endian followed by those
//! bytes, `opt(None)` is the single byte `0x00` and `opt(Some(s))` is the byte `0x01` followed by
//! `str(s)`. Every item is either fixed-size or length-prefixed, so two different records never
//! encode to the same bytes. The database stores the roles as a JSON array of strings
//! (`actor_roles`), the hashes as 32 raw bytes.

use std::time::{SystemTime, UNIX_EPOCH};

use ring::digest;
use serde::{Deserialize, Serialize};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: Hash = [0; 32];

const RECORD_TAG: &str = "megalis.audit.record.v1";

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Authenticated subject (user id, client id, or `system`).
    pub subject: String,
    /// National professional identifier (`8` + RPPS) when known.
    pub national_id: Option<String>,
    /// Organisation acted for (FINESS, SIRET or a local id).
    pub organisation: Option<String>,
    pub roles: Vec<String>,
}

impl Actor {
    pub fn new(subject: impl Into<String>) -> Self {
        Actor {
            subject: subject.into(),
            national_id: None,
            organisation: None,
            roles: Vec::new(),
        }
    }
}

/// How the action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    /// Refused by an authorisation or consent decision.
    Denied,
    /// Attempted but failed (error, invalid input).
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "denied" => Some(Outcome::Denied),
            "failure" => Some(Outcome::Failure),
            _ => None,
        }
    }
}

/// One audit record, as the caller describes it. The log gives it its sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Microseconds since the Unix epoch, UTC, from the clock of the process that made the record.
    /// The order of the trail is `seq`; times from several replicas need not be monotonic.
    pub time_us: i64,
    pub actor: Actor,
    /// What was done, e.g. `patient.read`, `document.create`, `login`.
    pub action: String,
    /// Kind of object acted on, e.g. `Patient`, `DocumentReference`, `session`.
    pub object_type: String,
    pub object_id: Option<String>,
    /// Regional patient identifier, when the action concerns a patient.
    pub patient_id: Option<String>,
    /// Purpose of use (care, emergency / break-the-glass, administration…).
    pub purpose: Option<String>,
    pub outcome: Outcome,
    /// Client address as seen by the server (after trusted proxies).
    pub source_address: Option<String>,
    pub request_id: Option<String>,
    /// Free text or JSON with whatever else is worth keeping.
    pub detail: Option<String>,
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

impl AuditRecord {
    /// A record stamped with the current time; set the optional fields with the `with_…` methods.
    pub fn new(
        actor: Actor,
        action: impl Into<String>,
        object_type: impl Into<String>,
        outcome: Outcome,
    ) -> Self {
        AuditRecord {
            time_us: now_us(),
            actor,
            action: action.into(),
            object_type: object_type.into(),
            object_id: None,
            patient_id: None,
            purpose: None,
            outcome,
            source_address: None,
            request_id: None,
            detail: None,
        }
    }

    pub fn with_object_id(mut self, id: impl Into<String>) -> Self {
        self.object_id = Some(id.into());
        self
    }
    pub fn with_patient(mut self, patient_id: impl Into<String>) -> Self {
        self.patient_id = Some(patient_id.into());
        self
    }
    pub fn with_purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(purpose.into());
        self
    }
    pub fn with_source_address(mut self, addr: impl Into<String>) -> Self {
        self.source_address = Some(addr.into());
        self
    }
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// One copy of this record per patient, in the given order (an action touching several
    /// patients is recorded once for each, so each patient's access log is complete).
    pub fn per_patient<I, S>(&self, patients: I) -> Vec<AuditRecord>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        patients
            .into_iter()
            .map(|p| AuditRecord {
                patient_id: Some(p.into()),
                ..self.clone()
            })
            .collect()
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // A field longer than 4 GiB cannot be stored anyway; the cast is checked so that such a
    // field could never alias a shorter one.
    let len = u32::try_from(s.len()).expect("audit field shorter than 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

/// Appends the canonical encoding `E(seq)` of `record` (see the module documentation) to `out`.
pub fn encode_canonical(seq: u64, record: &AuditRecord, out: &mut Vec<u8>) {
    put_str(out, RECORD_TAG);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&record.time_us.to_be_bytes());
    put_str(out, &record.actor.subject);
    put_opt(out, record.actor.national_id.as_deref());
    put_opt(out, record.actor.organisation.as_deref());
    let count = u32::try_from(record.actor.roles.len()).expect("fewer than 2^32 roles");
    out.extend_from_slice(&count.to_be_bytes());
    for role in &record.actor.roles {
        put_str(out, role);
    }
    put_str(out, &record.action);
    put_str(out, &record.object_type);
    put_opt(out, record.object_id.as_deref());
    put_opt(out, record.patient_id.as_deref());
    put_opt(out, record.purpose.as_deref());
    put_str(out, record.outcome.as_str());
    put_opt(out, record.source_address.as_deref());
    put_opt(out, record.request_id.as_deref());
    put_opt(out, record.detail.as_deref());
}

/// `SHA-256(prev_hash ‖ E(seq, record))`.
pub fn record_hash(prev_hash: &Hash, seq: u64, record: &AuditRecord) -> Hash {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(prev_hash);
    encode_canonical(seq, record, &mut buf);
    let d = digest::digest(&digest::SHA256, &buf);
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// A record with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedRecord {
    pub seq: u64,
    pub prev_hash: Hash,
    pub hash: Hash,
    pub record: AuditRecord,
}

/// Chains `records` after the head `(head_seq, head_hash)`: sequence numbers `head_seq + 1…`.
pub fn chain(head_seq: u64, head_hash: Hash, records: &[AuditRecord]) -> Vec<ChainedRecord> {
    let mut prev = head_hash;
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let seq = head_seq + 1 + i as u64;
            let hash = record_hash(&prev, seq, r);
            let c = ChainedRecord {
                seq,
                prev_hash: prev,
                hash,
                record: r.clone(),
            };
            prev = hash;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AuditRecord {
        AuditRecord {
            time_us: 1_764_000_000_000_000,
            actor: Actor {
                subject: "u-42".into(),
                national_id: Some("810000000001".into()),
                organisation: Some("350005179".into()),
                roles: vec!["doctor".into(), "admin".into()],
            },
            action: "patient.read".into(),
            object_type: "Patient".into(),
            object_id: Some("p-1".into()),
            patient_id: Some("p-1".into()),
            purpose: Some("care".into()),
            outcome: Outcome::Success,
            source_address: Some("192.0.2.7".into()),
            request_id: Some("req-1".into()),
            detail: None,
        }
    }

    fn encoded(r: &AuditRecord) -> Vec<u8> {
        let mut v = Vec::new();
        encode_canonical(7, r, &mut v);
        v
    }

    /// Pins the hash of a fixed record so that an accidental change of the encoding (which would
    /// make every stored chain fail verification) breaks this test. The expected value was
    /// computed independently with Python's hashlib from the byte layout in the module docs.
    #[test]
    fn hash_is_pinned() {
        let h = record_hash(&GENESIS_HASH, 7, &sample());
        assert_eq!(hex::encode(h), PINNED);
    }
    const PINNED: &str = "c3f0eb57a85c111543509b4eb2cdb3a57ecbf7008dd4477cc60392bad7d31d14";

    #[test]
    fn encoding_starts_with_tag_seq_and_time() {
        let v = encoded(&sample());
        assert_eq!(&v[..4], &(RECORD_TAG.len() as u32).to_be_bytes());
        assert_eq!(&v[4..4 + RECORD_TAG.len()], RECORD_TAG.as_bytes());
        let rest = &v[4 + RECORD_TAG.len()..];
        assert_eq!(&rest[..8], &7u64.to_be_bytes());
        assert_eq!(&rest[8..16], &1_764_000_000_000_000i64.to_be_bytes());
    }

    /// Each case changes a record in a way a naive concatenation would not distinguish; the
    /// encodings (and so the hashes) must all differ from the base record's.
    #[test]
    fn ambiguous_looking_changes_encode_differently() {
        let base = sample();
        type Change = Box<dyn Fn(&mut AuditRecord)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "move a char between fields",
                Box::new(|r| {
                    r.action = "patient.rea".into();
                    r.object_type = "dPatient".into();
                }),
            ),
            (
                "merge two roles",
                Box::new(|r| r.actor.roles = vec!["doctoradmin".into()]),
            ),
            (
                "split a role",
                Box::new(|r| r.actor.roles = vec!["doc".into(), "tor".into(), "admin".into()]),
            ),
            (
                "None vs empty string",
                Box::new(|r| r.detail = Some(String::new())),
            ),
            (
                "Some moved to the next optional",
                Box::new(|r| {
                    r.purpose = None;
                    r.source_address = Some("care".into());
                }),
            ),
            ("outcome", Box::new(|r| r.outcome = Outcome::Denied)),
            ("time", Box::new(|r| r.time_us += 1)),
            ("national id", Box::new(|r| r.actor.national_id = None)),
            (
                "organisation",
                Box::new(|r| r.actor.organisation = Some("x".into())),
            ),
            ("object id", Box::new(|r| r.object_id = Some("p-2".into()))),
            ("patient", Box::new(|r| r.patient_id = None)),
            (
                "request id",
                Box::new(|r| r.request_id = Some("req-2".into())),
            ),
            ("subject", Box::new(|r| r.actor.subject = "u-43".into())),
        ];
        let base_enc = encoded(&base);
        for (name, change) in cases {
            let mut r = base.clone();
            change(&mut r);
            assert_ne!(encoded(&r), base_enc, "{name}");
            assert_ne!(
                record_hash(&GENESIS_HASH, 7, &r),
                record_hash(&GENESIS_HASH, 7, &base),
                "{name}"
            );
        }
    }

    #[test]
    fn seq_and_prev_hash_are_bound() {
        let r = sample();
        let h = record_hash(&GENESIS_HASH, 7, &r);
        assert_ne!(h, record_hash(&GENESIS_HASH, 8, &r));
        assert_ne!(h, record_hash(&[1; 32], 7, &r));
    }

    #[test]
    fn chain_links_each_record_to_the_previous() {
        let rs = sample().per_patient(["a", "b", "c"]);
        let head = [9u8; 32];
        let c = chain(41, head, &rs);
        assert_eq!(c.iter().map(|c| c.seq).collect::<Vec<_>>(), [42, 43, 44]);
        assert_eq!(c[0].prev_hash, head);
        assert_eq!(c[1].prev_hash, c[0].hash);
        assert_eq!(c[2].prev_hash, c[1].hash);
        for link in &c {
            assert_eq!(
                link.hash,
                record_hash(&link.prev_hash, link.seq, &link.record)
            );
        }
        assert_eq!(
            c.iter()
                .map(|c| c.record.patient_id.as_deref().unwrap())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn outcome_round_trips() {
        for o in [Outcome::Success, Outcome::Denied, Outcome::Failure] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("ok"), None);
    }
}
