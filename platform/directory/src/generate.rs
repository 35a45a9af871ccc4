//! A generator of realistic synthetic extractions of the same shape as
//! `PS_LibreAcces_Personne_activite_*.txt`, for tests and benchmarks: French and Breton names,
//! the usual professions (médecins with TRE_R38 specialties, infirmiers, pharmaciens,
//! masseurs-kinésithérapeutes…), sites in Brittany (hospitals, cabinets, pharmacies) with
//! FINESS and SIRET numbers carrying valid Luhn keys, and communes with their INSEE codes and
//! postcodes.
//!
//! Deterministic: the same `(rows, seed)` gives the same bytes on every machine (our own
//! SplitMix64, not a library generator whose sequence may change between versions). A
//! practitioner's or a site's fields derive from its own index, so they are identical on every
//! row that repeats them — as in the real file, where rows of one person follow each other.
//! All data is invented; numbers may collide with real ones only by chance.

use std::io::{self, Write};

use crate::parse::header_line;

/// SplitMix64: tiny, fast, fixed forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A generator for item `index` of stream `stream`, independent of every other item.
    fn derive(seed: u64, stream: u64, index: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA24B_AED4_963E_E407));
        r.0 ^= index.wrapping_mul(0x9FB2_1C65_1E98_DF25);
        r.next_u64();
        r
    }
}

/// Appends the Luhn check digit to a string of digits.
pub fn with_luhn(digits: &str) -> String {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

const FAMILY: &[&str] = &[
    "LE GALL",
    "LE GOFF",
    "LE ROUX",
    "TANGUY",
    "LE BRIS",
    "GUEGUEN",
    "MORVAN",
    "LE CORRE",
    "KERBRAT",
    "LE BIHAN",
    "LE GUEN",
    "JEGOU",
    "LE MOAL",
    "PRIGENT",
    "CLOAREC",
    "QUEMENER",
    "L'HOSTIS",
    "LE FLOC'H",
    "KERAUDREN",
    "LE HÉNAFF",
    "GUILLOU",
    "HAMON",
    "RIOU",
    "LE BERRE",
    "MARTIN",
    "BERNARD",
    "THOMAS",
    "PETIT",
    "ROBERT",
    "RICHARD",
    "DURAND",
    "DUBOIS",
    "MOREAU",
    "LAURENT",
    "SIMON",
    "MICHEL",
    "LEFÈVRE",
    "LEROY",
    "ROUX",
    "DAVID",
    "BERTRAND",
    "MOREL",
    "FOURNIER",
    "GIRARD",
    "BONNET",
    "DUPONT",
    "LAMBERT",
    "FONTAINE",
    "ROUSSEAU",
    "VINCENT",
    "MULLER",
    "FAURE",
    "ANDRÉ",
    "MERCIER",
    "BLANC",
    "GUÉRIN",
    "BOYER",
    "GARNIER",
    "CHEVALIER",
    "FRANÇOIS",
    "LEGRAND",
    "GAUTHIER",
    "GARCIA",
    "PERRIN",
    "ROBIN",
    "CLÉMENT",
    "MORIN",
    "NICOLAS",
    "HENRY",
    "ROUSSEL",
    "MATHIEU",
    "GAUTIER",
    "MASSON",
    "MARCHAND",
    "DUVAL",
    "DENIS",
    "DUMONT",
    "MARIE",
    "LEMAIRE",
    "NOËL",
    "MEYER",
    "DUFOUR",
    "MEUNIER",
    "BRUN",
    "BLANCHARD",
    "GIRAUD",
    "JOLY",
    "RIVIÈRE",
    "LUCAS",
    "BRUNET",
    "GAILLARD",
    "BARBIER",
    "ARNAUD",
    "MARTINEZ",
    "GÉRARD",
    "ROCHE",
    "RENARD",
    "SCHMITT",
    "ROY",
    "LEROUX",
    "COLIN",
    "VIDAL",
    "CARON",
    "PICARD",
    "ROGER",
    "FABRE",
    "AUBERT",
    "LEMOINE",
    "RENAUD",
    "DUMAS",
    "LACROIX",
    "OLIVIER",
    "PHILIPPE",
    "BOURGEOIS",
    "PIERRE",
    "BENOÎT",
    "REY",
    "LECLERC",
    "PAYET",
    "ROLLAND",
    "LE CAM",
    "COADOU",
    "MADEC",
    "LE DREFF",
    "ABGRALL",
    "CARADEC",
];

const GIVEN_F: &[&str] = &[
    "Maïwenn",
    "Nolwenn",
    "Gwenaëlle",
    "Anne",
    "Marie",
    "Sophie",
    "Isabelle",
    "Nathalie",
    "Catherine",
    "Sandrine",
    "Valérie",
    "Céline",
    "Claire",
    "Julie",
    "Camille",
    "Léa",
    "Manon",
    "Chloé",
    "Emma",
    "Louise",
    "Morgane",
    "Soizic",
    "Katell",
    "Enora",
    "Rozenn",
    "Élodie",
    "Aurélie",
    "Émilie",
    "Hélène",
    "Françoise",
    "Anne-Sophie",
    "Marie-Hélène",
    "Zoé",
    "Inès",
    "Gaëlle",
    "Laëtitia",
    "Maëlle",
    "Solène",
    "Ophélie",
    "Bénédicte",
];

const GIVEN_M: &[&str] = &[
    "Yann",
    "Erwan",
    "Gwénolé",
    "Ronan",
    "Loïc",
    "Tanguy",
    "Goulven",
    "Corentin",
    "Killian",
    "Jean",
    "Pierre",
    "Michel",
    "Philippe",
    "Alain",
    "Patrick",
    "Nicolas",
    "Christophe",
    "Stéphane",
    "Laurent",
    "Frédéric",
    "Julien",
    "Thomas",
    "Antoine",
    "Mathieu",
    "Hugo",
    "Lucas",
    "Maël",
    "Gaël",
    "Brieuc",
    "Tugdual",
    "Jean-Yves",
    "Jean-François",
    "Pierre-Yves",
    "Hervé",
    "Yves",
    "Joël",
    "Noël",
    "Sébastien",
    "Jérôme",
    "François",
];

/// Communes of Brittany: name, INSEE (COG) code, postcode, department code.
const COMMUNES: &[(&str, &str, &str, &str)] = &[
    ("Rennes", "35238", "35000", "35"),
    ("Brest", "29019", "29200", "29"),
    ("Quimper", "29232", "29000", "29"),
    ("Lorient", "56121", "56100", "56"),
    ("Vannes", "56260", "56000", "56"),
    ("Saint-Malo", "35288", "35400", "35"),
    ("Saint-Brieuc", "22278", "22000", "22"),
    ("Lanester", "56098", "56600", "56"),
    ("Fougères", "35115", "35300", "35"),
    ("Lannion", "22113", "22300", "22"),
    ("Concarneau", "29039", "29900", "29"),
    ("Vitré", "35360", "35500", "35"),
    ("Morlaix", "29151", "29600", "29"),
    ("Landerneau", "29103", "29800", "29"),
    ("Dinan", "22050", "22100", "22"),
    ("Pontivy", "56178", "56300", "56"),
    ("Guingamp", "22070", "22200", "22"),
    ("Auray", "56007", "56400", "56"),
    ("Redon", "35236", "35600", "35"),
    ("Ploërmel", "56165", "56800", "56"),
    ("Douarnenez", "29046", "29100", "29"),
    ("Carhaix-Plouguer", "29024", "29270", "29"),
    ("Paimpol", "22162", "22500", "22"),
    ("Quimperlé", "29233", "29300", "29"),
    ("Cesson-Sévigné", "35051", "35510", "35"),
    ("Bruz", "35047", "35170", "35"),
    ("Plougastel-Daoulas", "29189", "29470", "29"),
    ("Landivisiau", "29105", "29400", "29"),
    ("Loudéac", "22136", "22600", "22"),
    ("Lamballe-Armor", "22093", "22400", "22"),
    ("Hennebont", "56083", "56700", "56"),
    ("Ploemeur", "56162", "56270", "56"),
    ("Guipavas", "29075", "29490", "29"),
    ("Pont-l'Abbé", "29220", "29120", "29"),
    ("Crozon", "29042", "29160", "29"),
    ("Dinard", "35093", "35800", "35"),
    ("Perros-Guirec", "22168", "22700", "22"),
    ("Plérin", "22187", "22190", "22"),
    ("Josselin", "56091", "56120", "56"),
    ("Questembert", "56184", "56230", "56"),
];

fn department_label(code: &str) -> &'static str {
    match code {
        "22" => "Côtes-d'Armor",
        "29" => "Finistère",
        "35" => "Ille-et-Vilaine",
        _ => "Morbihan",
    }
}

const STREETS: &[(&str, &str, &str)] = &[
    ("R", "Rue", "JEAN JAURÈS"),
    ("AV", "Avenue", "DU GÉNÉRAL DE GAULLE"),
    ("R", "Rue", "DE LA GARE"),
    ("BD", "Boulevard", "VICTOR HUGO"),
    ("PL", "Place", "DE LA RÉPUBLIQUE"),
    ("R", "Rue", "DE SIAM"),
    ("R", "Rue", "ANNE DE BRETAGNE"),
    ("AV", "Avenue", "DE LA LIBÉRATION"),
    ("R", "Rue", "DU MOULIN"),
    ("R", "Rue", "PASTEUR"),
    ("QU", "Quai", "DU PORT"),
    ("RTE", "Route", "DE QUIMPER"),
    ("ALL", "Allée", "DES GOÉLANDS"),
    ("IMP", "Impasse", "DES AJONCS"),
    ("R", "Rue", "DE L'ÉGLISE"),
    ("BD", "Boulevard", "DE LA TOUR D'AUVERGNE"),
];

/// Professions: TRE_G15 code, label, weight, register authority.
const PROFESSIONS: &[(&str, &str, u64, &str)] = &[
    ("10", "Médecin", 35, "CNOM"),
    ("60", "Infirmier", 30, "ONI"),
    ("70", "Masseur-Kinésithérapeute", 12, "CNOMK"),
    ("21", "Pharmacien", 10, "CNOP"),
    ("40", "Chirurgien-Dentiste", 5, "CNOCD"),
    ("50", "Sage-Femme", 3, "CNOSF"),
    ("91", "Orthophoniste", 3, "ARS"),
    ("80", "Pédicure-Podologue", 2, "ONPP"),
];

/// TRE_R38 specialties of médecins, with weights.
const SPECIALTIES: &[(&str, &str, u64)] = &[
    ("SM54", "Médecine générale", 45),
    ("SM04", "Cardiologie et maladies vasculaires", 6),
    ("SM02", "Anesthésie-réanimation", 6),
    ("SM42", "Psychiatrie", 6),
    ("SM40", "Pédiatrie", 5),
    ("SM44", "Radio-diagnostic et imagerie médicale", 5),
    ("SM20", "Gynécologie-obstétrique", 4),
    ("SM38", "Ophtalmologie", 4),
    ("SM32", "Neurologie", 3),
    ("SM15", "Dermatologie et vénéréologie", 3),
    ("SM26", "Médecine interne", 3),
    ("SM53", "Néphrologie", 2),
    ("SM05", "Chirurgie générale", 4),
    ("SM23", "Gastro-entérologie et hépatologie", 4),
];

const HOSPITAL_NAMES: &[&str] = &[
    "CENTRE HOSPITALIER UNIVERSITAIRE",
    "CENTRE HOSPITALIER",
    "CLINIQUE",
    "POLYCLINIQUE",
    "HÔPITAL LOCAL",
    "CENTRE DE RÉÉDUCATION",
];

fn weighted<'a, T>(rng: &mut Rng, items: &'a [T], weight: impl Fn(&T) -> u64) -> &'a T {
    let total: u64 = items.iter().map(&weight).sum();
    let mut n = rng.below(total);
    for item in items {
        let w = weight(item);
        if n < w {
            return item;
        }
        n -= w;
    }
    &items[items.len() - 1]
}

/// Kinds of site, each a numbered pool.
#[derive(Clone, Copy)]
enum Site {
    Hospital(u64),
    Cabinet(u64),
    Pharmacy(u64),
}

const STREAM_PERSON: u64 = 1;
const STREAM_SITE: u64 = 2;
const STREAM_ACTIVITY: u64 = 3;

/// Writes a synthetic extraction of exactly `rows` data rows (after the header).
pub fn write<W: Write>(out: W, rows: u64, seed: u64) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 20, out);
    out.write_all(header_line().as_bytes())?;
    out.write_all(b"\n")?;
    let pools = Pools {
        hospitals: (rows / 2_000).clamp(4, 400),
        cabinets: (rows / 5).max(4),
        pharmacies: (rows / 80).max(2),
    };
    let mut written = 0;
    let mut person = 0u64;
    let mut line = String::with_capacity(1024);
    while written < rows {
        let mut rng = Rng::derive(seed, STREAM_PERSON, person);
        let p = Person::new(&mut rng, person);
        let activities = match rng.below(100) {
            0..75 => 1,
            75..95 => 2,
            _ => 3,
        };
        for a in 0..activities {
            if written == rows {
                break;
            }
            let mut arng = Rng::derive(seed, STREAM_ACTIVITY, person * 4 + a);
            line.clear();
            p.row(&mut line, &mut arng, &pools, seed, a);
            out.write_all(line.as_bytes())?;
            written += 1;
        }
        person += 1;
    }
    out.flush()
}

struct Pools {
    hospitals: u64,
    cabinets: u64,
    pharmacies: u64,
}

struct Person {
    kind: &'static str,
    identifier: String,
    female: bool,
    family: &'static str,
    given: &'static str,
    profession: &'static (&'static str, &'static str, u64, &'static str),
    specialty: Option<&'static (&'static str, &'static str, u64)>,
    pharmacist_section: Option<(&'static str, &'static str)>,
}

impl Person {
    fn new(rng: &mut Rng, index: u64) -> Person {
        let profession = weighted(rng, PROFESSIONS, |p| p.2);
        // A few professions are still registered in ADELI only.
        let adeli = matches!(profession.0, "91" | "80") && rng.below(2) == 0;
        let (kind, identifier) = if adeli {
            let dept = rng.pick(COMMUNES).3;
            ("0", format!("{dept}{}{:06}", 9, index % 1_000_000))
        } else {
            ("8", with_luhn(&format!("1{:09}", 1_000_000 + index)))
        };
        let female = rng.below(100) < 60;
        let family = *rng.pick(FAMILY);
        let given = if female {
            *rng.pick(GIVEN_F)
        } else {
            *rng.pick(GIVEN_M)
        };
        let specialty = (profession.0 == "10").then(|| weighted(rng, SPECIALTIES, |s| s.2));
        let pharmacist_section = (profession.0 == "21").then(|| {
            *rng.pick(&[
                ("A", "Pharmaciens titulaires d'officine"),
                ("D", "Pharmaciens adjoints et autres exercices"),
                ("H", "Pharmaciens des établissements de santé"),
            ])
        });
        Person {
            kind,
            identifier,
            female,
            family,
            given,
            profession,
            specialty,
            pharmacist_section,
        }
    }

    fn row(&self, line: &mut String, rng: &mut Rng, pools: &Pools, seed: u64, activity: u64) {
        let salaried = match self.profession.0 {
            "21" => self.pharmacist_section.is_some_and(|s| s.0 == "H"),
            "50" => rng.below(100) < 70,
            "60" => rng.below(100) < 75,
            "10" => rng.below(100) < 45,
            _ => rng.below(100) < 15,
        };
        let site = if salaried {
            Site::Hospital(rng.below(pools.hospitals))
        } else if self.profession.0 == "21" {
            Site::Pharmacy(rng.below(pools.pharmacies))
        } else {
            Site::Cabinet(rng.below(pools.cabinets))
        };
        let doctor = matches!(self.profession.0, "10" | "21" | "40");
        let (pc, pl) = if doctor { ("DR", "Docteur") } else { ("", "") };
        let (cc, cl) = if self.female {
            ("MME", "Madame")
        } else {
            ("M", "Monsieur")
        };
        let (sk, skl, sc, sl) = match self.specialty {
            Some(s) => ("S", "Spécialité ordinale", s.0, s.1),
            None => ("", "", "", ""),
        };
        let (mc, ml) = if salaried {
            ("S", "Salarié")
        } else if activity == 2 {
            ("B", "Bénévole")
        } else {
            ("L", "Libéral, indépendant, artisan, commerçant")
        };
        let (psc, psl) = self.pharmacist_section.unwrap_or(("", ""));
        let national = format!("{}{}", self.kind, self.identifier);
        let authority = if self.kind == "0" {
            "ARS/ADELI"
        } else {
            self.profession.3
        };
        let site_fields = site_fields(site, seed);
        let fields: [&str; 19] = [
            self.kind,
            &self.identifier,
            &national,
            pc,
            pl,
            cc,
            cl,
            self.family,
            self.given,
            self.profession.0,
            self.profession.1,
            "C",
            "Civil",
            sk,
            skl,
            sc,
            sl,
            mc,
            ml,
        ];
        for f in fields {
            line.push_str(f);
            line.push('|');
        }
        for f in &site_fields.0 {
            line.push_str(f);
            line.push('|');
        }
        line.push_str(authority);
        line.push('|');
        line.push_str(&site_fields.1);
        line.push('|');
        line.push_str(psc);
        line.push('|');
        line.push_str(psl);
        line.push_str("|\n");
    }
}

/// The 28 site columns (SIRET … former id, columns 20–47) and the sector code|label pair.
fn site_fields(site: Site, seed: u64) -> ([String; 28], String) {
    let (stream_index, category) = match site {
        Site::Hospital(i) => (i, 0),
        Site::Cabinet(i) => (i, 1),
        Site::Pharmacy(i) => (i, 2),
    };
    let mut rng = Rng::derive(seed, STREAM_SITE, stream_index * 3 + category);
    let commune = *rng.pick(COMMUNES);
    let street = *rng.pick(STREETS);
    let number = (1 + rng.below(180)).to_string();
    let siren = with_luhn(&format!("{:08}", 20_000_000 + stream_index * 3 + category));
    let siret = with_luhn(&format!("{siren}{:04}", 1 + rng.below(20)));
    let finess = with_luhn(&format!(
        "{}{}{:05}",
        commune.3,
        category,
        (stream_index % 100_000)
    ));
    let finess_legal = with_luhn(&format!("{}0{:05}", commune.3, stream_index % 100_000));
    let phone = format!("02{:08}", rng.below(100_000_000));
    let (structure_id, name, finess_site, legal, sector) = match site {
        Site::Hospital(_) => {
            let kind = rng.pick(HOSPITAL_NAMES);
            (
                format!("1{finess}"),
                format!("{kind} DE {}", commune.0.to_uppercase()),
                finess,
                finess_legal,
                "SA01|Établissement public de santé",
            )
        }
        Site::Pharmacy(_) => (
            format!("1{finess}"),
            format!(
                "PHARMACIE {} {}",
                match rng.below(3) {
                    0 => "DE LA GARE",
                    1 => "DU CENTRE",
                    _ => "DES HALLES",
                },
                commune.0.to_uppercase()
            ),
            finess,
            String::new(),
            "SA33|Officine de pharmacie",
        ),
        Site::Cabinet(_) => (
            format!("3{siret}"),
            format!(
                "CABINET {} {}",
                match rng.below(3) {
                    0 => "MÉDICAL",
                    1 => "PARAMÉDICAL",
                    _ => "DE GROUPE",
                },
                rng.pick(FAMILY)
            ),
            String::new(),
            String::new(),
            "SA07|Cabinet individuel ou de groupe",
        ),
    };
    let email = if matches!(site, Site::Hospital(_)) {
        format!("secretariat@{}.mssante.fr", structure_id.to_lowercase())
    } else {
        String::new()
    };
    let fields = [
        siret,
        siren,
        finess_site,
        legal,
        structure_id,
        name,
        String::new(),
        String::new(),
        String::new(),
        number,
        String::new(),
        street.0.to_string(),
        street.1.to_string(),
        street.2.to_string(),
        String::new(),
        String::new(),
        commune.2.to_string(),
        commune.1.to_string(),
        commune.0.to_string(),
        "99100".to_string(),
        "France".to_string(),
        phone,
        String::new(),
        String::new(),
        email,
        commune.3.to_string(),
        department_label(commune.3).to_string(),
        String::new(),
    ];
    (fields, sector.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Parsed, Reader};

    fn generate(rows: u64, seed: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, rows, seed).unwrap();
        out
    }

    #[test]
    fn luhn_keys_are_valid() {
        // Known valid SIREN (the French tax office's published example).
        assert_eq!(with_luhn("73282932"), "732829320");
        assert_eq!(with_luhn("7992739871"), "79927398713");
    }

    #[test]
    fn generated_files_parse_without_rejections_and_are_deterministic() {
        let a = generate(2_000, 7);
        assert_eq!(a, generate(2_000, 7));
        assert_ne!(a, generate(2_000, 8));
        let mut rows = 0;
        let mut practitioners = std::collections::HashSet::new();
        let mut professions = std::collections::HashSet::new();
        for item in Reader::new(&a[..]).unwrap() {
            match item.unwrap() {
                Parsed::Row(r) => {
                    rows += 1;
                    practitioners.insert(r.practitioner.national_id.clone());
                    professions.insert(r.practitioner.profession.code.clone());
                    if let Some(o) = &r.organisation {
                        assert!(o.address.postal_code.as_deref().unwrap().len() == 5);
                    }
                }
                Parsed::Rejected(e) => panic!("generated row rejected: {e}"),
            }
        }
        assert_eq!(rows, 2_000);
        assert!(practitioners.len() > 1_300 && practitioners.len() < 1_900);
        assert!(professions.len() >= 6, "{professions:?}");
    }

    #[test]
    fn a_practitioner_is_described_identically_on_each_of_their_rows() {
        let text = String::from_utf8(generate(500, 3)).unwrap();
        let mut seen: std::collections::HashMap<String, String> = Default::default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split('|').collect();
            let person = f[..13].join("|");
            if let Some(previous) = seen.insert(f[2].to_string(), person.clone()) {
                assert_eq!(previous, person);
            }
        }
    }
}
