//! A synthetic regional population of Brittany, with duplicates injected at known rates, so that
//! matching quality can be measured against a known truth (which person each record belongs to).
//!
//! Names come from short lists of frequent Breton and French surnames and first names, drawn
//! with a Zipf-like law (frequent names are very frequent: that is what makes homonyms and large
//! blocks). Birthplaces are INSEE (COG) codes of communes of the four Breton departments, a few
//! outside Brittany and a few countries (`99xxx`). Every generated INS has a correct key. The same
//! seed always gives the same population.

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use time::{Date, Month};

use crate::ins::{OID_NIR, with_key};
use crate::{
    Attributes, Demographics, IdentityStatus, Ins, Sex, SourceId, SourceRecord, StrictTraits,
};

const SURNAMES: &[&str] = &[
    "Le Goff",
    "Martin",
    "Le Gall",
    "Thomas",
    "Le Roux",
    "Tanguy",
    "Hervé",
    "Le Bihan",
    "Guillou",
    "Morvan",
    "Bernard",
    "Le Floch",
    "Jégou",
    "Le Borgne",
    "Petit",
    "Cariou",
    "Le Corre",
    "Le Guen",
    "Richard",
    "Robert",
    "Le Hénaff",
    "Kerboriou",
    "Quéméner",
    "Le Meur",
    "Riou",
    "Durand",
    "Dubois",
    "Le Bras",
    "Guéguen",
    "Le Gac",
    "Lemoine",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "Le Berre",
    "Nicolas",
    "Prigent",
    "Le Bris",
    "Salaün",
    "Kerhervé",
    "Pennec",
    "Caradec",
    "Jaouen",
    "Le Moal",
    "Le Page",
    "Coquet",
    "Briand",
    "Rolland",
    "Daniel",
    "Lucas",
    "Gicquel",
    "Le Cam",
    "Le Du",
    "Berthou",
    "Le Lay",
    "Abgrall",
    "Kervella",
    "Le Dantec",
    "Guivarc'h",
    "Lagadec",
    "Madec",
    "Le Pape",
    "Philippe",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Muller",
    "Le Saux",
    "Boulanger",
    "Josse",
    "Le Coz",
    "Ollivier",
    "Raoul",
    "Le Bourhis",
    "Corre",
    "Le Nours",
    "de Kerguelen",
    "de la Villemarqué",
    "Duval",
    "Mahé",
    "Le Quéré",
    "Gourvès",
    "Le Fur",
    "Bourhis",
    "Scouarnec",
    "Le Moigne",
    "Postic",
    "L'Hostis",
    "Queffélec",
    "Le Bot",
    "Thépaut",
    "Le Men",
    "Hamon",
    "Le Roy",
    "Collet",
    "Perrot",
    "Lebreton",
    "Guillemot",
    "Le Mao",
    "Stéphan",
    "Marzin",
    "Le Hir",
    "Kerouédan",
    "Cloarec",
    "Bihannic",
    "Le Rest",
    "Omnès",
    "Trividic",
    "N'Diaye",
    "Benali",
    "Nguyen",
    "Da Silva",
    "Fernandes",
];

const FEMALE: &[&str] = &[
    "Marie",
    "Anne",
    "Nathalie",
    "Isabelle",
    "Sylvie",
    "Catherine",
    "Françoise",
    "Christine",
    "Monique",
    "Valérie",
    "Sandrine",
    "Stéphanie",
    "Céline",
    "Julie",
    "Camille",
    "Léa",
    "Manon",
    "Emma",
    "Chloé",
    "Louise",
    "Jade",
    "Alice",
    "Inès",
    "Zoé",
    "Nolwenn",
    "Gwenaëlle",
    "Maïwenn",
    "Soizic",
    "Rozenn",
    "Anaïs",
    "Morgane",
    "Élodie",
    "Aurélie",
    "Émilie",
    "Hélène",
    "Jeanne",
    "Yvonne",
    "Marie-Claire",
    "Anne-Sophie",
    "Marie-Thérèse",
    "Annick",
    "Brigitte",
    "Martine",
    "Gaëlle",
    "Solenn",
    "Clémence",
    "Margaux",
    "Lucie",
    "Agathe",
    "Mathilde",
    "Laure",
    "Nadia",
    "Fatima",
    "Sarah",
    "Léna",
    "Romane",
    "Juliette",
    "Armelle",
    "Katell",
    "Enora",
];

const MALE: &[&str] = &[
    "Jean",
    "Pierre",
    "Michel",
    "Philippe",
    "Alain",
    "Patrick",
    "Nicolas",
    "Christophe",
    "Daniel",
    "Bernard",
    "Éric",
    "Laurent",
    "Frédéric",
    "Stéphane",
    "David",
    "Julien",
    "Thomas",
    "Lucas",
    "Hugo",
    "Louis",
    "Gabriel",
    "Arthur",
    "Jules",
    "Nathan",
    "Léo",
    "Yann",
    "Erwan",
    "Gwénolé",
    "Loïc",
    "Ronan",
    "Goulven",
    "Tanguy",
    "Yannick",
    "Corentin",
    "Maël",
    "Killian",
    "Mathieu",
    "Jean-Pierre",
    "Jean-Claude",
    "Jean-Yves",
    "Jean-Luc",
    "Pierre-Yves",
    "Yves",
    "Hervé",
    "Guénolé",
    "Kévin",
    "Anthony",
    "Sébastien",
    "François",
    "Joël",
    "René",
    "André",
    "Marcel",
    "Mohamed",
    "Karim",
    "Paul",
    "Antoine",
    "Baptiste",
    "Timothée",
    "Riwal",
];

/// INSEE codes of communes of Brittany (Finistère 29, Côtes-d'Armor 22, Ille-et-Vilaine 35,
/// Morbihan 56), then a few outside it and a few countries (99 + country code).
const BIRTHPLACES: &[&str] = &[
    "35238", "29019", "29232", "56121", "56260", "35288", "22278", "22113", "29151", "35115",
    "35360", "29039", "22050", "56178", "29103", "22070", "29233", "29046", "56007", "35236",
    "56165", "22093", "35051", "35047", "29189", "22162", "22136", "29024", "56083", "56098",
    "75056", "44109", "69123", "99350", "99134", "99109",
];

/// Hospitals feeding the regional index: assigning authorities (FINESS-based OIDs, illustrative).
pub const AUTHORITIES: &[&str] = &[
    "1.2.250.1.71.4.2.2.290000017",
    "1.2.250.1.71.4.2.2.350005179",
    "1.2.250.1.71.4.2.2.560023210",
    "1.2.250.1.71.4.2.2.560008799",
    "1.2.250.1.71.4.2.2.220000020",
    "1.2.250.1.71.4.2.2.290000785",
];

/// Rates at which duplicates and errors are injected; fixed before any tuning of the matcher.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rates {
    /// A person known to a second hospital.
    pub second_record: f64,
    /// A person known to a third hospital (among those with a second).
    pub third_record: f64,
    /// A person with a twin (same birth name, date, place; different first name and INS).
    pub twin: f64,
    /// Per duplicate record:
    pub name_typo: f64,
    pub first_name_typo: f64,
    pub date_transposition: f64,
    pub date_typo: f64,
    pub missing_ins: f64,
    /// A woman's used name typed as her birth name.
    pub used_name_as_birth_name: f64,
    /// A new used name (marriage) since the other source saw her.
    pub used_name_change: f64,
    pub only_first_first_name: f64,
    pub capitals_without_accents: f64,
    pub missing_birthplace: f64,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            second_record: 0.30,
            third_record: 0.15,
            twin: 0.01,
            name_typo: 0.08,
            first_name_typo: 0.08,
            date_transposition: 0.03,
            date_typo: 0.03,
            missing_ins: 0.40,
            used_name_as_birth_name: 0.15,
            used_name_change: 0.10,
            only_first_first_name: 0.30,
            capitals_without_accents: 0.50,
            missing_birthplace: 0.20,
        }
    }
}

/// One generated record and the truth about it.
#[derive(Debug, Clone)]
pub struct SynthRecord {
    /// The person it belongs to (the truth).
    pub person: u32,
    /// The person's twin, if any.
    pub twin_of: Option<u32>,
    pub record: SourceRecord,
    /// Errors injected in this record (empty for a person's first record).
    pub errors: Vec<&'static str>,
}

struct Person {
    birth_name: String,
    used_name: Option<String>,
    first_names: Vec<String>,
    birth_date: Date,
    sex: Sex,
    birthplace: String,
    ins: Ins,
    twin_of: Option<u32>,
}

fn zipf<'a>(rng: &mut ChaCha8Rng, list: &'a [&'a str]) -> &'a str {
    // Weight 1/(rank+1)^0.9, sampled by inversion on the cumulative sum.
    let total: f64 = (0..list.len())
        .map(|i| 1.0 / ((i + 1) as f64).powf(0.9))
        .sum();
    let mut x = rng.random::<f64>() * total;
    for (i, name) in list.iter().enumerate() {
        x -= 1.0 / ((i + 1) as f64).powf(0.9);
        if x <= 0.0 {
            return name;
        }
    }
    list[list.len() - 1]
}

fn first_names(rng: &mut ChaCha8Rng, sex: Sex) -> Vec<String> {
    let list = if sex == Sex::Female { FEMALE } else { MALE };
    let n = rng.random_range(1..=3);
    let mut names: Vec<String> = Vec::new();
    while names.len() < n {
        let name = zipf(rng, list).to_string();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn random_date(rng: &mut ChaCha8Rng) -> Date {
    let year = rng.random_range(1930..=2025);
    let month = Month::try_from(rng.random_range(1..=12u8)).expect("month in range");
    let day = rng.random_range(1..=month.length(year));
    Date::from_calendar_date(year, month, day).expect("valid date")
}

fn make_ins(rng: &mut ChaCha8Rng, sex: Sex, date: Date, birthplace: &str, order: u32) -> Ins {
    let sex_digit = if sex == Sex::Female { 2 } else { 1 };
    let number = format!(
        "{sex_digit}{:02}{:02}{}{order:03}",
        date.year() % 100,
        u8::from(date.month()),
        birthplace
    );
    let _ = rng;
    Ins::parse(&with_key(&number).expect("generated NIR"), OID_NIR, false).expect("valid INS")
}

fn typo(rng: &mut ChaCha8Rng, s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if chars.len() < 3 {
        return s.to_string();
    }
    let i = rng.random_range(1..chars.len() - 1);
    let letter = (b'a' + rng.random_range(0..26u8)) as char;
    match rng.random_range(0..4) {
        0 => chars[i] = letter,
        1 => {
            chars.remove(i);
        }
        2 => chars.insert(i, letter),
        _ => chars.swap(i, i + 1),
    }
    chars.into_iter().collect()
}

fn capitals_without_accents(s: &str) -> String {
    crate::matching::normalize::normalize_name(s)
}

fn date_typo(rng: &mut ChaCha8Rng, d: Date) -> Date {
    // Another digit typed for the units of the day or of the year.
    for _ in 0..10 {
        let candidate = if rng.random_bool(0.5) {
            let day = (d.day() / 10) * 10 + rng.random_range(0..10u8);
            Date::from_calendar_date(d.year(), d.month(), day).ok()
        } else {
            let year = (d.year() / 10) * 10 + rng.random_range(0..10);
            Date::from_calendar_date(year, d.month(), d.day()).ok()
        };
        if let Some(c) = candidate.filter(|c| *c != d && c.year() <= 2025) {
            return c;
        }
    }
    d
}

/// Generates `persons` persons and their records (first record of each person first, then
/// duplicates in a shuffled order of sources and times).
pub fn generate(persons: usize, seed: u64, rates: &Rates) -> Vec<SynthRecord> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut people: Vec<Person> = Vec::with_capacity(persons + persons / 50);
    while people.len() < persons {
        let sex = if rng.random_bool(0.5) {
            Sex::Female
        } else {
            Sex::Male
        };
        let birth_date = random_date(&mut rng);
        let birthplace = (*BIRTHPLACES.choose(&mut rng).expect("non-empty")).to_string();
        let birth_name = zipf(&mut rng, SURNAMES).to_string();
        let used_name = (sex == Sex::Female && birth_date.year() < 2000 && rng.random_bool(0.5))
            .then(|| zipf(&mut rng, SURNAMES).to_string())
            .filter(|u| *u != birth_name);
        let order = rng.random_range(1..=990);
        let ins = make_ins(&mut rng, sex, birth_date, &birthplace, order);
        let id = people.len() as u32;
        let names = first_names(&mut rng, sex);
        let twin = rng.random_bool(rates.twin);
        people.push(Person {
            birth_name: birth_name.clone(),
            used_name,
            first_names: names.clone(),
            birth_date,
            sex,
            birthplace: birthplace.clone(),
            ins,
            twin_of: None,
        });
        if twin && people.len() < persons {
            let twin_sex = if rng.random_bool(0.5) {
                Sex::Female
            } else {
                Sex::Male
            };
            // A first name that shares no word and no sound with the sibling's.
            let mut twin_names = first_names(&mut rng, twin_sex);
            while twin_names.iter().any(|n| {
                names.iter().any(|m| {
                    crate::matching::phonetic::phonetic(n) == crate::matching::phonetic::phonetic(m)
                        || n.split('-').any(|w| m.split('-').any(|v| v == w))
                })
            }) {
                twin_names = first_names(&mut rng, twin_sex);
            }
            let ins = make_ins(&mut rng, twin_sex, birth_date, &birthplace, order + 1);
            people.push(Person {
                birth_name,
                used_name: None,
                first_names: twin_names,
                birth_date,
                sex: twin_sex,
                birthplace,
                ins,
                twin_of: Some(id),
            });
        }
    }

    let mut out = Vec::with_capacity(persons * 3 / 2);
    let mut local = 0u64;
    for (pid, p) in people.iter().enumerate() {
        let copies = if rng.random_bool(rates.second_record) {
            if rng.random_bool(rates.third_record) {
                3
            } else {
                2
            }
        } else {
            1
        };
        let mut authorities: Vec<&str> = AUTHORITIES.to_vec();
        for copy in 0..copies {
            let i = rng.random_range(0..authorities.len());
            let authority = authorities.swap_remove(i);
            local += 1;
            let mut errors = Vec::new();
            let mut birth_name = p.birth_name.clone();
            let mut used_name = p.used_name.clone();
            let mut names = p.first_names.clone();
            let mut date = p.birth_date;
            let mut birthplace = Some(p.birthplace.clone());
            let mut ins = Some(p.ins.clone());
            if copy > 0 {
                if rng.random_bool(rates.name_typo) {
                    birth_name = typo(&mut rng, &birth_name);
                    errors.push("name typo");
                }
                if rng.random_bool(rates.first_name_typo) {
                    names[0] = typo(&mut rng, &names[0]);
                    errors.push("first name typo");
                }
                if rng.random_bool(rates.date_transposition)
                    && date.day() <= 12
                    && date.day() != u8::from(date.month())
                {
                    let month = Month::try_from(date.day()).expect("day ≤ 12");
                    date = Date::from_calendar_date(date.year(), month, u8::from(date.month()))
                        .expect("swapped date");
                    errors.push("date transposition");
                } else if rng.random_bool(rates.date_typo) {
                    date = date_typo(&mut rng, date);
                    errors.push("date typo");
                }
                if rng.random_bool(rates.missing_ins) {
                    ins = None;
                    errors.push("missing INS");
                }
                if p.sex == Sex::Female && rng.random_bool(rates.used_name_as_birth_name) {
                    if let Some(u) = used_name.take() {
                        birth_name = u;
                        errors.push("used name as birth name");
                    }
                } else if p.sex == Sex::Female && rng.random_bool(rates.used_name_change) {
                    used_name = Some(zipf(&mut rng, SURNAMES).to_string());
                    errors.push("used name change");
                }
                if names.len() > 1 && rng.random_bool(rates.only_first_first_name) {
                    names.truncate(1);
                    errors.push("only first first name");
                }
                if rng.random_bool(rates.capitals_without_accents) {
                    birth_name = capitals_without_accents(&birth_name);
                    names = names.iter().map(|n| capitals_without_accents(n)).collect();
                    errors.push("capitals without accents");
                }
                if rng.random_bool(rates.missing_birthplace) {
                    birthplace = None;
                    errors.push("missing birthplace");
                }
            }
            let status = match (&ins, &birthplace) {
                (Some(_), Some(_)) if rng.random_bool(0.6) => IdentityStatus::Qual,
                (Some(_), _) => IdentityStatus::Recup,
                (None, Some(_)) if rng.random_bool(0.5) => IdentityStatus::Vali,
                _ => IdentityStatus::Prov,
            };
            out.push(SynthRecord {
                person: pid as u32,
                twin_of: p.twin_of,
                record: SourceRecord {
                    id: SourceId {
                        authority: authority.to_string(),
                        local_id: format!("IPP{local:08}"),
                    },
                    ins,
                    demographics: Demographics {
                        traits: StrictTraits {
                            birth_name,
                            birth_first_names: names,
                            birth_date: date,
                            sex: p.sex,
                            birthplace,
                        },
                        used_name,
                        used_first_name: None,
                        address: None,
                        telecom: None,
                    },
                    status,
                    attributes: Attributes::default(),
                    updated_us: local as i64,
                },
                errors,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_population_and_every_record_is_valid() {
        let a = generate(2_000, 7, &Rates::default());
        let b = generate(2_000, 7, &Rates::default());
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.record == y.record));
        let today = time::macros::date!(2026 - 11 - 25);
        for r in &a {
            r.record
                .validate(today)
                .unwrap_or_else(|e| panic!("{:?}: {e}", r.record));
        }
        let c = generate(2_000, 8, &Rates::default());
        assert_ne!(a[0].record, c[0].record);
    }

    #[test]
    fn duplicate_rates_are_near_the_configured_ones() {
        let rates = Rates::default();
        let records = generate(20_000, 1, &rates);
        let persons = records.iter().map(|r| r.person).max().unwrap() as f64 + 1.0;
        let dups = records.len() as f64 - persons;
        let expected = rates.second_record * (1.0 + rates.third_record);
        assert!(
            (dups / persons - expected).abs() < 0.02,
            "{}",
            dups / persons
        );
        let twins = records
            .iter()
            .filter(|r| r.twin_of.is_some())
            .map(|r| r.person);
        let twins: std::collections::BTreeSet<u32> = twins.collect();
        assert!((twins.len() as f64 / persons - rates.twin).abs() < 0.005);
        let missing = records
            .iter()
            .filter(|r| r.errors.contains(&"missing INS"))
            .count() as f64;
        assert!((missing / dups - rates.missing_ins).abs() < 0.03);
    }
}
