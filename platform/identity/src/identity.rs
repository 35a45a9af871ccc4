//! A patient identity as one source (a hospital, a FHIR feed) knows it, and the identity-vigilance
//! rules of the RNIV (Référentiel national d'identitovigilance) that apply to it.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::{IdentityError, Ins};

/// Administrative sex as carried by the strict traits (HL7 v2 table 0001 subset used by PAM-FR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sex {
    Male,
    Female,
    Unknown,
}

impl Sex {
    pub fn parse_hl7(s: &str) -> Result<Self, IdentityError> {
        match s {
            "M" => Ok(Sex::Male),
            "F" => Ok(Sex::Female),
            "U" | "O" | "A" => Ok(Sex::Unknown),
            _ => Err(IdentityError::InvalidTrait {
                field: "sex",
                reason: format!("{s:?} is not M, F or U"),
            }),
        }
    }

    pub fn hl7(self) -> &'static str {
        match self {
            Sex::Male => "M",
            Sex::Female => "F",
            Sex::Unknown => "U",
        }
    }
}

/// The five strict traits (traits stricts) of the RNIV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrictTraits {
    /// Nom de naissance.
    pub birth_name: String,
    /// Liste des prénoms de naissance, in the order of the civil record.
    pub birth_first_names: Vec<String>,
    pub birth_date: Date,
    pub sex: Sex,
    /// INSEE (COG) code of the birthplace: a commune code, or `99xxx` for a country. Unknown for
    /// some provisional identities.
    pub birthplace: Option<String>,
}

impl StrictTraits {
    /// Checks the traits a source sends before anything is stored: names present, a possible
    /// birth date (not in the future, not before 1880), a well-formed birthplace code.
    pub fn validate(&self, today: Date) -> Result<(), IdentityError> {
        if self.birth_name.trim().is_empty() {
            return Err(IdentityError::MissingTrait("birth name"));
        }
        if self.birth_first_names.iter().all(|n| n.trim().is_empty()) {
            return Err(IdentityError::MissingTrait("birth first names"));
        }
        if self.birth_date > today || self.birth_date.year() < 1880 {
            return Err(IdentityError::InvalidTrait {
                field: "birth date",
                reason: format!("{} is not a possible birth date", self.birth_date),
            });
        }
        if let Some(code) = &self.birthplace
            && !is_cog_code(code)
        {
            return Err(IdentityError::InvalidTrait {
                field: "birthplace",
                reason: format!("{code:?} is not an INSEE code (5 characters, 2A/2B for Corsica)"),
            });
        }
        Ok(())
    }
}

/// INSEE COG code: 5 digits, or `2A`/`2B` followed by 3 digits.
pub fn is_cog_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 5
        && (b.iter().all(u8::is_ascii_digit)
            || ((code.starts_with("2A") || code.starts_with("2B"))
                && b[2..].iter().all(u8::is_ascii_digit)))
}

/// Identity status (statut de l'identité).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IdentityStatus {
    /// Provisional: neither checked against an ID document nor retrieved from INSi.
    Prov,
    /// Retrieved from the INSi teleservice, not checked against an ID document.
    Recup,
    /// Checked against an ID document, INS not retrieved.
    Vali,
    /// Qualified: both.
    Qual,
}

impl IdentityStatus {
    pub fn code(self) -> &'static str {
        match self {
            IdentityStatus::Prov => "PROV",
            IdentityStatus::Recup => "RECUP",
            IdentityStatus::Vali => "VALI",
            IdentityStatus::Qual => "QUAL",
        }
    }

    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        match s {
            "PROV" => Ok(IdentityStatus::Prov),
            "RECUP" => Ok(IdentityStatus::Recup),
            "VALI" => Ok(IdentityStatus::Vali),
            "QUAL" => Ok(IdentityStatus::Qual),
            _ => Err(IdentityError::InvalidStatus(s.to_string())),
        }
    }

    /// Trust rank for survivorship: QUAL > VALI > RECUP > PROV. VALI ranks above RECUP because
    /// a document seen by a person also vouches for the used name and first name, which INSi
    /// does not return.
    pub fn rank(self) -> u8 {
        match self {
            IdentityStatus::Prov => 0,
            IdentityStatus::Recup => 1,
            IdentityStatus::Vali => 2,
            IdentityStatus::Qual => 3,
        }
    }

    /// Whether the INS came from INSi (RECUP or QUAL), so that it may be used to link records
    /// deterministically.
    pub fn ins_retrieved(self) -> bool {
        matches!(self, IdentityStatus::Recup | IdentityStatus::Qual)
    }

    /// The status after a strict trait changed. The INSi check and the document check both vouched
    /// for the old traits, so neither holds any more: a QUAL or RECUP identity falls back to VALI
    /// when the change is itself backed by an ID document, otherwise to PROV. PROV and VALI
    /// identities keep their status (VALI only when the change comes with a document).
    pub fn after_strict_trait_change(self, change_backed_by_document: bool) -> Self {
        if change_backed_by_document {
            IdentityStatus::Vali
        } else {
            IdentityStatus::Prov
        }
    }
}

/// Additional attributes (attributs de l'identité).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attributes {
    /// DOUTE: the identity is doubtful.
    pub doubtful: bool,
    /// FICTI: a fictitious identity (anonymous care, tests): never linked or merged.
    pub fictitious: bool,
    /// HOMON: a known homonym exists: links only after a human review.
    pub homonym: bool,
}

/// Demographics of one source record: strict traits plus the extended ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demographics {
    pub traits: StrictTraits,
    pub used_name: Option<String>,
    pub used_first_name: Option<String>,
    pub address: Option<String>,
    pub telecom: Option<String>,
}

/// A local identifier and its assigning authority (establishment OID or FINESS).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceId {
    pub authority: String,
    pub local_id: String,
}

/// An identity as a source sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub id: SourceId,
    pub ins: Option<Ins>,
    pub demographics: Demographics,
    pub status: IdentityStatus,
    pub attributes: Attributes,
    /// When the source last changed this record (µs since the epoch): the recency tie-break.
    pub updated_us: i64,
}

impl SourceRecord {
    /// Consistency rules a record must meet before it is stored: traits valid; RECUP and QUAL
    /// need an INS (they mean "retrieved from INSi"); a QUAL or VALI identity needs the
    /// birthplace (the document shows it); a fictitious identity cannot be QUAL.
    pub fn validate(&self, today: Date) -> Result<(), IdentityError> {
        self.demographics.traits.validate(today)?;
        if self.status.ins_retrieved() && self.ins.is_none() {
            return Err(IdentityError::MissingTrait("INS (status RECUP or QUAL)"));
        }
        if matches!(self.status, IdentityStatus::Qual | IdentityStatus::Vali)
            && self.demographics.traits.birthplace.is_none()
        {
            return Err(IdentityError::MissingTrait(
                "birthplace (status VALI or QUAL)",
            ));
        }
        if self.attributes.fictitious && self.status == IdentityStatus::Qual {
            return Err(IdentityError::InvalidStatus(
                "QUAL with FICTI: a fictitious identity cannot be qualified".into(),
            ));
        }
        Ok(())
    }

    /// The INS as it may be shown to other systems: only for a QUAL identity (RNIV).
    pub fn shareable_ins(&self) -> Option<&Ins> {
        self.ins
            .as_ref()
            .filter(|_| self.status == IdentityStatus::Qual)
    }

    /// Applies an update from the same source. Changing a strict trait of an identity whose
    /// status vouched for the old traits downgrades the status, whatever the source claims,
    /// unless the source explicitly re-qualifies it (it sends QUAL/VALI *and* the INS check or
    /// document check was redone, which PAM-FR says by sending the status again with the
    /// new traits — we accept the claimed status then, capped by the evidence it implies).
    pub fn apply_update(&mut self, new: SourceRecord, requalified: bool) {
        let traits_changed = new.demographics.traits != self.demographics.traits;
        let mut status = new.status;
        if traits_changed && self.status >= IdentityStatus::Recup && !requalified {
            status = status.min(
                self.status
                    .after_strict_trait_change(new.status >= IdentityStatus::Vali),
            );
        }
        *self = SourceRecord { status, ..new };
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::date;

    pub(crate) fn sample(status: IdentityStatus) -> SourceRecord {
        SourceRecord {
            id: SourceId {
                authority: "1.2.250.1.71.4.2.2.350005179".into(),
                local_id: "IPP1".into(),
            },
            ins: Some(
                Ins::parse(
                    &crate::ins::with_key("2690299341732").unwrap(),
                    crate::ins::OID_NIR,
                    false,
                )
                .unwrap(),
            ),
            demographics: Demographics {
                traits: StrictTraits {
                    birth_name: "LE GOFF".into(),
                    birth_first_names: vec!["Anne".into(), "Marie".into()],
                    birth_date: date!(1969 - 02 - 14),
                    sex: Sex::Female,
                    birthplace: Some("29232".into()),
                },
                used_name: Some("MORVAN".into()),
                used_first_name: None,
                address: None,
                telecom: None,
            },
            status,
            attributes: Attributes::default(),
            updated_us: 0,
        }
    }

    type Edit = Box<dyn Fn(&mut SourceRecord)>;

    #[test]
    fn trait_validation_table() {
        let today = date!(2026 - 11 - 25);
        let mut cases: Vec<(&str, Edit, Option<&str>)> = vec![
            ("ok", Box::new(|_| {}), None),
            (
                "no name",
                Box::new(|r| r.demographics.traits.birth_name = " ".into()),
                Some("birth name"),
            ),
            (
                "no first names",
                Box::new(|r| r.demographics.traits.birth_first_names.clear()),
                Some("first names"),
            ),
            (
                "future",
                Box::new(|r| r.demographics.traits.birth_date = date!(2027 - 01 - 01)),
                Some("birth date"),
            ),
            (
                "too old",
                Box::new(|r| r.demographics.traits.birth_date = date!(1870 - 01 - 01)),
                Some("birth date"),
            ),
            (
                "bad place",
                Box::new(|r| r.demographics.traits.birthplace = Some("2C123".into())),
                Some("birthplace"),
            ),
            (
                "corsica ok",
                Box::new(|r| r.demographics.traits.birthplace = Some("2A004".into())),
                None,
            ),
            ("QUAL without INS", Box::new(|r| r.ins = None), Some("INS")),
            (
                "QUAL without birthplace",
                Box::new(|r| r.demographics.traits.birthplace = None),
                Some("birthplace"),
            ),
            (
                "QUAL fictitious",
                Box::new(|r| r.attributes.fictitious = true),
                Some("fictitious"),
            ),
        ];
        for (name, change, expected) in cases.drain(..) {
            let mut r = sample(IdentityStatus::Qual);
            change(&mut r);
            match (r.validate(today), expected) {
                (Ok(()), None) => {}
                (Err(e), Some(m)) => assert!(e.to_string().contains(m), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn ins_shared_only_when_qualified() {
        for (status, shared) in [
            (IdentityStatus::Prov, false),
            (IdentityStatus::Recup, false),
            (IdentityStatus::Vali, false),
            (IdentityStatus::Qual, true),
        ] {
            assert_eq!(
                sample(status).shareable_ins().is_some(),
                shared,
                "{status:?}"
            );
        }
    }

    #[test]
    fn strict_trait_change_downgrades() {
        // (old status, new claimed status, change traits?, requalified, expected)
        let cases = [
            (
                IdentityStatus::Qual,
                IdentityStatus::Qual,
                true,
                false,
                IdentityStatus::Vali,
            ),
            (
                IdentityStatus::Qual,
                IdentityStatus::Recup,
                true,
                false,
                IdentityStatus::Prov,
            ),
            (
                IdentityStatus::Qual,
                IdentityStatus::Qual,
                false,
                false,
                IdentityStatus::Qual,
            ),
            (
                IdentityStatus::Qual,
                IdentityStatus::Qual,
                true,
                true,
                IdentityStatus::Qual,
            ),
            (
                IdentityStatus::Recup,
                IdentityStatus::Recup,
                true,
                false,
                IdentityStatus::Prov,
            ),
            (
                IdentityStatus::Prov,
                IdentityStatus::Vali,
                true,
                false,
                IdentityStatus::Vali,
            ),
        ];
        for (old, claimed, change, requalified, expected) in cases {
            let mut r = sample(old);
            let mut new = sample(claimed);
            if change {
                new.demographics.traits.birth_first_names = vec!["Anne".into()];
            }
            r.apply_update(new, requalified);
            assert_eq!(r.status, expected, "{old:?} → {claimed:?} change={change}");
        }
    }
}
