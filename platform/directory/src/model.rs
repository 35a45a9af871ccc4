//! Domain types of the directory: practitioners, organisations (sites) and activities, as read
//! from one row of the Annuaire Santé extraction. Plain data, no I/O.

/// A code and its label as published (TRE_G15, TRE_R38, TRE_R23…). Labels are kept as the
/// national extraction spells them so that what we show matches the source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Coded {
    pub code: String,
    pub label: String,
}

impl Coded {
    pub fn new(code: impl Into<String>, label: impl Into<String>) -> Self {
        Coded {
            code: code.into(),
            label: label.into(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.code.is_empty()
    }
}

/// Which national register identifies a practitioner (column `Type d'identifiant PP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierKind {
    /// `0`: ADELI number (9 characters); national id `0`+ADELI.
    Adeli,
    /// `8`: RPPS number (11 digits); national id `8`+RPPS.
    Rpps,
}

impl IdentifierKind {
    pub fn code(self) -> &'static str {
        match self {
            IdentifierKind::Adeli => "0",
            IdentifierKind::Rpps => "8",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "0" => Some(IdentifierKind::Adeli),
            "8" => Some(IdentifierKind::Rpps),
            _ => None,
        }
    }
}

/// A health professional. One practitioner appears on as many rows as they have activities;
/// the first row of an import describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Practitioner {
    /// `8`+RPPS or `0`+ADELI: the identifier carried by the CPS card and Pro Santé Connect.
    pub national_id: String,
    pub kind: IdentifierKind,
    /// The RPPS or ADELI number itself.
    pub identifier: String,
    /// Civility used in practice (`DR`, `PR`, `MME`, `M`…).
    pub practice_civility: Coded,
    pub civility: Coded,
    pub family_name: String,
    pub given_name: String,
    /// TRE_G15 profession (`10` médecin, `60` infirmier…).
    pub profession: Coded,
    /// TRE_R09 professional category (`C` civil, `M` militaire, `E` étudiant).
    pub category: Coded,
    /// MSSanté address. The `Personne_activite` extraction does not carry it (it comes with the
    /// separate MSSanté extraction), so the import leaves it empty; kept for that later feed.
    pub mssante_address: Option<String>,
}

/// A site where professionals practise (column `Identifiant technique de la structure`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Organisation {
    /// The national technical id of the structure: our key and the FHIR id.
    pub structure_id: String,
    pub siret: Option<String>,
    pub siren: Option<String>,
    pub finess_site: Option<String>,
    pub finess_legal: Option<String>,
    pub name: String,
    pub trade_name: Option<String>,
    pub address: Address,
    pub phone: Option<String>,
    pub phone2: Option<String>,
    pub fax: Option<String>,
    pub email: Option<String>,
    pub department: Coded,
    /// TRE_R02 sector of activity (`SA01` établissement public de santé, `SA07` cabinet…).
    pub sector: Coded,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    /// Recipient complement, geographic complement, then `number index type street`.
    pub lines: Vec<String>,
    /// Distribution mention and cedex office, when present.
    pub district: Option<String>,
    pub postal_code: Option<String>,
    /// INSEE (COG) code of the commune.
    pub commune_code: Option<String>,
    pub city: Option<String>,
    pub country_code: Option<String>,
    pub country: Option<String>,
}

/// Mode of practice (TRE_R23).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PracticeMode {
    /// `L`
    Liberal,
    /// `S`
    Salaried,
    /// `B`
    Volunteer,
}

impl PracticeMode {
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "L" => Some(PracticeMode::Liberal),
            "S" => Some(PracticeMode::Salaried),
            "B" => Some(PracticeMode::Volunteer),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            PracticeMode::Liberal => "L",
            PracticeMode::Salaried => "S",
            PracticeMode::Volunteer => "B",
        }
    }
}

/// One practice of a practitioner: practitioner × site × profession × specialty × mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub national_id: String,
    /// The site, absent for the rows of professionals with no declared place of practice.
    pub structure_id: Option<String>,
    pub profession: Coded,
    /// Know-how type (`S` spécialité ordinale, `CEX` compétence exclusive…).
    pub specialty_kind: Coded,
    /// TRE_R38 specialty (`SM54` médecine générale…) or other know-how code.
    pub specialty: Coded,
    pub mode: Option<PracticeMode>,
    pub mode_label: String,
    /// Section of the pharmacists' register (`A`, `D`, `E`, `G`, `H`).
    pub pharmacist_section: Coded,
    pub registration_authority: Option<String>,
}

impl Activity {
    /// The natural key of an activity. Two rows with the same key are the same activity.
    pub fn natural_key(&self) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.national_id,
            self.structure_id.as_deref().unwrap_or(""),
            self.profession.code,
            self.specialty.code,
            self.mode.map_or("", PracticeMode::code)
        )
    }

    /// Stable, URL- and FHIR-safe id (24 hex digits of SHA-256 of the natural key).
    pub fn id(&self) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, self.natural_key().as_bytes());
        hex::encode(&d.as_ref()[..12])
    }
}

/// One accepted row of the extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    pub practitioner: Practitioner,
    pub organisation: Option<Organisation>,
    pub activity: Activity,
}

/// Folds a name for search: lower case, French accents and ligatures removed, apostrophes and
/// hyphens kept as spaces, so `Le Hénaff-Kérouédan` and `le henaff kerouedan` match.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' | 'å' | 'À' | 'Â' | 'Ä' | 'Á' | 'Ã' | 'Å' => {
                out.push('a')
            }
            'ç' | 'Ç' => out.push('c'),
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => out.push('e'),
            'î' | 'ï' | 'í' | 'ì' | 'Î' | 'Ï' | 'Í' | 'Ì' => out.push('i'),
            'ô' | 'ö' | 'ó' | 'ò' | 'õ' | 'Ô' | 'Ö' | 'Ó' | 'Ò' | 'Õ' => out.push('o'),
            'ù' | 'û' | 'ü' | 'ú' | 'Ù' | 'Û' | 'Ü' | 'Ú' => out.push('u'),
            'ÿ' | 'Ÿ' | 'ý' | 'Ý' => out.push('y'),
            'ñ' | 'Ñ' => out.push('n'),
            'æ' | 'Æ' => out.push_str("ae"),
            'œ' | 'Œ' => out.push_str("oe"),
            '-' | '\'' | '’' => out.push(' '),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_removes_accents_case_and_hyphens() {
        let cases = [
            ("Le Hénaff-Kérouédan", "le henaff kerouedan"),
            ("D'ARMOR", "d armor"),
            ("Lœïza", "loeiza"),
            ("ÇA", "ca"),
            ("abc", "abc"),
        ];
        for (input, expected) in cases {
            assert_eq!(fold(input), expected, "{input}");
        }
    }

    #[test]
    fn activity_ids_are_stable_and_distinguish_keys() {
        let a = Activity {
            national_id: "810001234567".into(),
            structure_id: Some("F290000017".into()),
            profession: Coded::new("10", "Médecin"),
            specialty_kind: Coded::new("S", "Spécialité ordinale"),
            specialty: Coded::new("SM54", "Médecine générale"),
            mode: Some(PracticeMode::Salaried),
            mode_label: "Salarié".into(),
            pharmacist_section: Coded::default(),
            registration_authority: None,
        };
        let mut b = a.clone();
        b.mode = Some(PracticeMode::Liberal);
        assert_eq!(a.id(), a.clone().id());
        assert_eq!(a.id().len(), 24);
        assert_ne!(a.id(), b.id());
    }
}
