//! Survivorship: how the golden record of a regional patient is built from its source records.
//!
//! # Rule
//! Sources are ranked by (1) identity status (QUAL > VALI > RECUP > PROV), (2) the trust given to
//! the assigning authority in configuration (higher first, unknown authorities 0), (3) recency
//! (latest `updated_us` first), then by source identifier so that the result never depends on the
//! order records were read in. Each field of the golden record takes the value of the best-ranked
//! source that has one. Nothing is overwritten silently: when another source disagrees on a strict
//! trait or on the INS, the golden record lists a [`Conflict`] naming every value and its source,
//! for the review queue. The golden record is derived, never edited: history lives with the
//! source records (each change of a source is kept by the store).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::matching::normalize::normalize_name;
use crate::{Attributes, Demographics, IdentityStatus, Ins, SourceId, SourceRecord};

/// Trust per assigning authority (OID or FINESS); absent authorities count 0.
pub type SourceTrust = BTreeMap<String, i32>;

/// Reads one compared field of a source record, normalised.
type FieldOf = Box<dyn Fn(&SourceRecord) -> Option<String>>;

/// A disagreement between sources on one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub field: &'static str,
    /// Each distinct value and the sources that send it; the first is the surviving one.
    pub values: Vec<(String, Vec<SourceId>)>,
}

/// The regional view of one patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoldenRecord {
    pub demographics: Demographics,
    /// The surviving INS, whatever the status; use [`GoldenRecord::shareable_ins`] for output.
    pub ins: Option<Ins>,
    pub status: IdentityStatus,
    pub attributes: Attributes,
    /// The sources in survivorship order.
    pub sources: Vec<SourceId>,
    pub conflicts: Vec<Conflict>,
}

impl GoldenRecord {
    /// The INS as it may be given to other systems: only when the surviving identity is QUAL.
    pub fn shareable_ins(&self) -> Option<&Ins> {
        self.ins
            .as_ref()
            .filter(|_| self.status == IdentityStatus::Qual)
    }
}

/// Builds the golden record of a non-empty set of source records.
pub fn survive(records: &[SourceRecord], trust: &SourceTrust) -> Option<GoldenRecord> {
    let mut ranked: Vec<&SourceRecord> = records.iter().collect();
    ranked.sort_by(|a, b| {
        let t = |r: &SourceRecord| trust.get(&r.id.authority).copied().unwrap_or(0);
        b.status
            .rank()
            .cmp(&a.status.rank())
            .then(t(b).cmp(&t(a)))
            .then(b.updated_us.cmp(&a.updated_us))
            .then(a.id.cmp(&b.id))
    });
    let best = *ranked.first()?;
    let first_some = |f: &dyn Fn(&SourceRecord) -> Option<String>| ranked.iter().find_map(|r| f(r));
    let demographics = Demographics {
        traits: best.demographics.traits.clone(),
        used_name: first_some(&|r| r.demographics.used_name.clone()),
        used_first_name: first_some(&|r| r.demographics.used_first_name.clone()),
        address: first_some(&|r| r.demographics.address.clone()),
        telecom: first_some(&|r| r.demographics.telecom.clone()),
    };
    let ins = ranked.iter().find_map(|r| r.ins.clone());
    let attributes = Attributes {
        doubtful: ranked.iter().any(|r| r.attributes.doubtful),
        fictitious: ranked.iter().any(|r| r.attributes.fictitious),
        homonym: ranked.iter().any(|r| r.attributes.homonym),
    };

    let mut conflicts = Vec::new();
    let fields: [(&'static str, FieldOf); 6] = [
        (
            "birth name",
            Box::new(|r| Some(normalize_name(&r.demographics.traits.birth_name))),
        ),
        (
            "birth first names",
            Box::new(|r| {
                Some(
                    r.demographics
                        .traits
                        .birth_first_names
                        .iter()
                        .map(|n| normalize_name(n))
                        .collect::<Vec<_>>()
                        .join(" "),
                )
            }),
        ),
        (
            "birth date",
            Box::new(|r| Some(r.demographics.traits.birth_date.to_string())),
        ),
        (
            "sex",
            Box::new(|r| Some(r.demographics.traits.sex.hl7().to_string())),
        ),
        (
            "birthplace",
            Box::new(|r| r.demographics.traits.birthplace.clone()),
        ),
        (
            "INS",
            Box::new(|r| r.ins.as_ref().map(|i| i.as_str().to_string())),
        ),
    ];
    for (field, get) in fields {
        let mut values: Vec<(String, Vec<SourceId>)> = Vec::new();
        for r in &ranked {
            if let Some(v) = get(r) {
                match values.iter_mut().find(|(x, _)| *x == v) {
                    Some((_, ids)) => ids.push(r.id.clone()),
                    None => values.push((v, vec![r.id.clone()])),
                }
            }
        }
        if values.len() > 1 {
            conflicts.push(Conflict { field, values });
        }
    }

    Some(GoldenRecord {
        demographics,
        ins,
        status: best.status,
        attributes,
        sources: ranked.iter().map(|r| r.id.clone()).collect(),
        conflicts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::tests::sample;

    fn source(authority: &str, status: IdentityStatus, updated_us: i64) -> SourceRecord {
        let mut r = sample(status);
        r.id = SourceId {
            authority: authority.into(),
            local_id: "1".into(),
        };
        r.updated_us = updated_us;
        r
    }

    /// (authority, status, updated_us)
    type Source<'a> = (&'a str, IdentityStatus, i64);

    #[test]
    fn survivorship_order() {
        let trust: SourceTrust = [("CHU".to_string(), 10)].into();
        // (records as (authority, status, updated), expected winner authority)
        let cases: [(&[Source], &str); 4] = [
            (
                &[
                    ("A", IdentityStatus::Prov, 9),
                    ("B", IdentityStatus::Qual, 1),
                ],
                "B",
            ),
            (
                &[
                    ("A", IdentityStatus::Vali, 9),
                    ("CHU", IdentityStatus::Vali, 1),
                ],
                "CHU",
            ),
            (
                &[
                    ("A", IdentityStatus::Vali, 1),
                    ("B", IdentityStatus::Vali, 2),
                ],
                "B",
            ),
            (
                &[
                    ("B", IdentityStatus::Vali, 1),
                    ("A", IdentityStatus::Vali, 1),
                ],
                "A",
            ),
        ];
        for (records, winner) in cases {
            let rs: Vec<_> = records.iter().map(|(a, s, u)| source(a, *s, *u)).collect();
            let g = survive(&rs, &trust).unwrap();
            assert_eq!(g.sources[0].authority, winner, "{records:?}");
            assert!(g.conflicts.is_empty());
        }
    }

    #[test]
    fn conflicts_are_surfaced_not_overwritten() {
        let a = source("A", IdentityStatus::Qual, 1);
        let mut b = source("B", IdentityStatus::Prov, 2);
        b.demographics.traits.birth_name = "Le Goff".into(); // same after normalisation
        b.demographics.traits.birthplace = Some("35238".into());
        b.demographics.used_name = None;
        b.demographics.telecom = Some("0299000000".into());
        let g = survive(&[b.clone(), a.clone()], &SourceTrust::new()).unwrap();
        assert_eq!(g.demographics.traits.birthplace.as_deref(), Some("29232"));
        assert_eq!(g.demographics.used_name.as_deref(), Some("MORVAN"));
        assert_eq!(g.demographics.telecom.as_deref(), Some("0299000000"));
        assert_eq!(g.conflicts.len(), 1);
        let c = &g.conflicts[0];
        assert_eq!(c.field, "birthplace");
        assert_eq!(c.values[0], ("29232".to_string(), vec![a.id.clone()]));
        assert_eq!(c.values[1], ("35238".to_string(), vec![b.id.clone()]));
        assert!(g.shareable_ins().is_some());
    }

    #[test]
    fn ins_hidden_unless_qualified_and_attributes_accumulate() {
        let a = source("A", IdentityStatus::Recup, 1);
        let mut b = source("B", IdentityStatus::Prov, 2);
        b.attributes.homonym = true;
        let g = survive(&[a, b], &SourceTrust::new()).unwrap();
        assert!(g.ins.is_some());
        assert!(g.shareable_ins().is_none());
        assert!(g.attributes.homonym);
        assert!(survive(&[], &SourceTrust::new()).is_none());
    }
}
