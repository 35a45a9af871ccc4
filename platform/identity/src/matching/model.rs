//! Fellegi–Sunter record comparison: each pair of records is compared field by field, each field
//! gives an agreement level, each level a weight `log2(m/u)` (m: how often true matches show this
//! level, u: how often non-matches do), and the sum decides with two thresholds.

use serde::{Deserialize, Serialize};
use time::Date;

use super::first_names::is_known_first_name;
use super::normalize::{first_first_name, first_name_words, surname_core, surname_joined};
use super::phonetic::phonetic;
use crate::{IdentityError, SourceRecord};

/// Compared fields, in the order of [`Comparison::levels`].
pub const FIELDS: [&str; 6] = [
    "birth name",
    "first names",
    "birth date",
    "sex",
    "birthplace",
    "INS",
];
/// Number of agreement levels per field (unused levels keep weight 0).
pub const LEVELS: usize = 7;
/// The level meaning "one side has no value": weight 0 by construction, never estimated.
pub const MISSING: u8 = LEVELS as u8 - 1;

/// What the comparator looks at, computed once per record.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchRecord {
    pub birth_joined: String,
    pub birth_core: String,
    pub birth_phonetic: String,
    pub used_joined: Option<String>,
    pub used_phonetic: Option<String>,
    pub first_first: String,
    pub first_phonetic: String,
    pub first_words: Vec<String>,
    /// The birth first names after the first, each joined (`JEAN PIERRE` → `JEANPIERRE`).
    pub other_first_names: Vec<String>,
    pub birth_date: Date,
    pub sex: crate::Sex,
    pub birthplace: Option<String>,
    pub ins: Option<String>,
    pub ins_retrieved: bool,
    pub fictitious: bool,
    pub homonym: bool,
}

impl MatchRecord {
    pub fn from_source(r: &SourceRecord) -> Self {
        let d = &r.demographics;
        let t = &d.traits;
        let used = d.used_name.as_deref().filter(|u| !u.trim().is_empty());
        MatchRecord {
            birth_joined: surname_joined(&t.birth_name),
            birth_core: surname_core(&t.birth_name),
            birth_phonetic: phonetic(&surname_core(&t.birth_name)),
            used_joined: used.map(surname_joined),
            used_phonetic: used.map(|u| phonetic(&surname_core(u))),
            first_first: first_first_name(&t.birth_first_names),
            first_phonetic: phonetic(&first_first_name(&t.birth_first_names)),
            first_words: first_name_words(&t.birth_first_names),
            other_first_names: t
                .birth_first_names
                .iter()
                .skip(1)
                .map(|n| surname_joined(n))
                .collect(),
            birth_date: t.birth_date,
            sex: t.sex,
            birthplace: t.birthplace.clone(),
            ins: r.ins.as_ref().map(|i| i.as_str().to_string()),
            ins_retrieved: r.status.ins_retrieved() && r.ins.is_some(),
            fictitious: r.attributes.fictitious,
            homonym: r.attributes.homonym,
        }
    }
}

/// Agreement levels of a pair, one per field of [`FIELDS`]; 0 is the strongest agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Comparison {
    pub levels: [u8; 6],
}

fn jw(a: &str, b: &str) -> f64 {
    strsim::jaro_winkler(a, b)
}

/// Birth name: 0 same (joined or without particles), 1 same sound, 2 close spelling (Jaro–Winkler
/// ≥ 0.9, or one typed letter away for names of 4 letters or more), 3 one side's used name is the other's birth name (a used name typed as birth name),
/// 4 different. (Never missing: the birth name is mandatory.)
fn birth_name_level(a: &MatchRecord, b: &MatchRecord) -> u8 {
    if a.birth_joined == b.birth_joined || a.birth_core == b.birth_core {
        0
    } else if !a.birth_phonetic.is_empty() && a.birth_phonetic == b.birth_phonetic {
        1
    } else if jw(&a.birth_joined, &b.birth_joined) >= 0.9
        || (a.birth_joined.len() >= 4
            && strsim::osa_distance(&a.birth_joined, &b.birth_joined) <= 1)
    {
        2
    } else if cross_name(a, b) || cross_name(b, a) {
        3
    } else {
        4
    }
}

fn cross_name(a: &MatchRecord, b: &MatchRecord) -> bool {
    a.used_joined.as_deref() == Some(&b.birth_joined)
        || a.used_phonetic
            .as_deref()
            .is_some_and(|p| !p.is_empty() && p == b.birth_phonetic)
}

/// First names: 0 the same list of first names; 1 the same first first name, the shorter list
/// a prefix of the longer (a source that kept only the first); 2 the first first names sound the
/// same or are close in spelling (Jaro–Winkler ≥ 0.88, or one typed letter away: short names like
/// `RENE`/`RNE` score low on Jaro–Winkler) and are not two different known given names: a
/// misspelling; 3 close in the same way, but both are known given names (`MARIE` / `MARINA`):
/// two names, as twins and siblings are given, not a typing error; 4 the lists share a first name
/// but disagree (the same first first name with other first names that conflict, as homonyms and
/// cousins have; or one list's words contain the other's first word, `JEAN PIERRE` / `JEAN`, or a
/// second first name used as the first); 5 different.
pub const FIRST_NAMES_DIFFERENT: u8 = 5;
/// First names level 2: close first first names, at least one not a known given name.
pub const FIRST_NAMES_MISSPELT: u8 = 2;
/// First names level 3: two different known given names close in sound or spelling.
pub const FIRST_NAMES_OTHER_CLOSE_NAME: u8 = 3;

fn first_name_level(a: &MatchRecord, b: &MatchRecord) -> u8 {
    if a.first_first == b.first_first {
        if a.other_first_names == b.other_first_names {
            return 0;
        }
        let (short, long) = if a.other_first_names.len() <= b.other_first_names.len() {
            (&a.other_first_names, &b.other_first_names)
        } else {
            (&b.other_first_names, &a.other_first_names)
        };
        if long.starts_with(short) { 1 } else { 4 }
    } else if (!a.first_phonetic.is_empty() && a.first_phonetic == b.first_phonetic)
        // Jaro–Winkler favours common prefixes: `ANNE` / `ANNESOPHIE` are two names, not a typo.
        || (a.first_first.len().abs_diff(b.first_first.len()) <= 2
            && jw(&a.first_first, &b.first_first) >= 0.88)
        || strsim::osa_distance(&a.first_first, &b.first_first) <= 1
    {
        if is_known_first_name(&a.first_first) && is_known_first_name(&b.first_first) {
            FIRST_NAMES_OTHER_CLOSE_NAME
        } else {
            FIRST_NAMES_MISSPELT
        }
    } else if a
        .first_words
        .first()
        .is_some_and(|w| b.first_words.contains(w))
        || b.first_words
            .first()
            .is_some_and(|w| a.first_words.contains(w))
    {
        4
    } else {
        FIRST_NAMES_DIFFERENT
    }
}

/// Birth date: 0 same, 1 day and month swapped, 2 one of day/month/year differs by one typed
/// digit, 3 different.
pub const BIRTH_DATE_ONE_DIGIT: u8 = 2;

fn birth_date_level(a: Date, b: Date) -> u8 {
    if a == b {
        return 0;
    }
    let (ad, am, ay) = (a.day(), u8::from(a.month()), a.year());
    let (bd, bm, by) = (b.day(), u8::from(b.month()), b.year());
    if ay == by && ad == bm && am == bd {
        return 1;
    }
    let digits = |d: u8, m: u8, y: i32| format!("{d:02}{m:02}{y:04}");
    let (x, y) = (digits(ad, am, ay), digits(bd, bm, by));
    let diff = x.bytes().zip(y.bytes()).filter(|(p, q)| p != q).count();
    if diff == 1 { 2 } else { 3 }
}

/// Compares two records field by field.
pub fn compare(a: &MatchRecord, b: &MatchRecord) -> Comparison {
    use crate::Sex::Unknown;
    let sex = if a.sex == Unknown || b.sex == Unknown {
        MISSING
    } else if a.sex == b.sex {
        0
    } else {
        1
    };
    let birthplace = match (&a.birthplace, &b.birthplace) {
        (Some(x), Some(y)) if x == y => 0,
        (Some(x), Some(y)) if x[..2] == y[..2] => 1,
        (Some(_), Some(_)) => 2,
        _ => MISSING,
    };
    let ins = match (&a.ins, &b.ins) {
        (Some(x), Some(y)) if x == y => 0,
        (Some(_), Some(_)) => 1,
        _ => MISSING,
    };
    Comparison {
        levels: [
            birth_name_level(a, b),
            first_name_level(a, b),
            birth_date_level(a.birth_date, b.birth_date),
            sex,
            birthplace,
            ins,
        ],
    }
}

/// What to do with a candidate pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Same patient: link automatically.
    Link,
    /// Possible duplicate: a person decides (review queue).
    Review,
    /// Different patients.
    Distinct,
}

/// Matching configuration: weights per field and level, and the two thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchConfig {
    /// `weights[field][level]` in bits; the missing level is always 0.
    pub weights: [[f64; LEVELS]; 6],
    /// At or above: automatic link.
    pub link_threshold: f64,
    /// At or above (and below the link threshold): review.
    pub review_threshold: f64,
}

impl MatchConfig {
    pub fn validate(&self) -> Result<(), IdentityError> {
        if self.review_threshold > self.link_threshold {
            return Err(IdentityError::InvalidConfig(
                "the review threshold must not exceed the link threshold".into(),
            ));
        }
        if self.weights.iter().flatten().any(|w| !w.is_finite()) {
            return Err(IdentityError::InvalidConfig(
                "weights must be finite".into(),
            ));
        }
        Ok(())
    }

    /// Whether the rules that do not depend on the score allow an automatic link at all:
    /// - not when the first names are different (twins share everything else);
    /// - not when the birth names agree neither in spelling, nor in sound, nor through a used
    ///   name;
    /// - not when the first first names are two different known given names, close in sound or
    ///   spelling (level [`FIRST_NAMES_OTHER_CLOSE_NAME`]), unless the same INS is on both sides.
    ///   Twins share birth name, birth date and birthplace, and parents often give them close
    ///   names (`MARIE` / `MARINA`, `LENA` / `LINA`); by the score alone, such a pair without an
    ///   INS looks like a duplicate with a typing error in the first name. A typing error rarely
    ///   makes another real name, so two real names are two names: a person looks at the pair
    ///   (review) rather than the index merging twins. A close first name that is not a known
    ///   name (level [`FIRST_NAMES_MISSPELT`], `MARXIE` / `MARIE`) is a typing error, the common
    ///   case of a duplicate, and the score decides;
    /// - not when neither the birthplace nor the INS can be compared (missing on one side) and
    ///   the four traits left (birth name, list of first names, birth date, sex) are not all
    ///   identical. Persons of the same birth name and first name born the same day are what a
    ///   region of millions produces (the training population has `BRUN CHRISTOPHE` born
    ///   1976-03-24 twice, one record with a second first name, the other without): with two of
    ///   the six traits missing, any difference left is for a person to look at;
    /// - not when the birth dates are one typed digit apart ([`BIRTH_DATE_ONE_DIGIT`]) without
    ///   the same INS on both sides, unless the birth name and the complete list of first names
    ///   are identical: the digit must then be the only approximation. A date one digit away
    ///   stands for some 35 other dates, the weakest agreement a date gives; persons of the same
    ///   frequent name born in the same maternity a few days or years apart are common, and when
    ///   one of them has only the first first name on record, or a misspelt one, the pair looks
    ///   like a duplicate with two typing errors. Under field independence, the non-matching
    ///   pairs of that kind expected above the link threshold in the training population (1M
    ///   records, seed 1) are ≈ 3.7 of the ≈ 5.0 expected false links in all
    ///   (`examples/matching_rules.rs`); the rule sends 469 of 287,737 true candidate pairs to
    ///   review instead.
    pub fn may_link(c: &Comparison) -> bool {
        let [birth_name, first_names, birth_date, sex, birthplace, ins] = c.levels;
        let four_traits_only = birthplace == MISSING && ins == MISSING;
        first_names != FIRST_NAMES_DIFFERENT
            && birth_name != 4
            && !(first_names == FIRST_NAMES_OTHER_CLOSE_NAME && ins != 0)
            && !(four_traits_only && (birth_name, first_names, birth_date, sex) != (0, 0, 0, 0))
            && !(birth_date == BIRTH_DATE_ONE_DIGIT
                && ins != 0
                && (birth_name, first_names) != (0, 0))
    }

    pub fn score(&self, c: &Comparison) -> f64 {
        c.levels
            .iter()
            .enumerate()
            .map(|(f, &l)| {
                if l == MISSING {
                    0.0
                } else {
                    self.weights[f][l as usize]
                }
            })
            .sum()
    }

    /// The decision for a pair, identity-vigilance rules first, then the score:
    /// - a fictitious identity is never linked (FICTI);
    /// - two INS retrieved from INSi that differ are two persons (deterministic);
    /// - the same INS retrieved from INSi on both sides links (deterministic), unless the first
    ///   names disagree entirely, which is a conflict for a person to look at;
    /// - completely different first names never link automatically (twins share everything else);
    /// - two different known given names close in sound or spelling link automatically only
    ///   with the same INS on both sides (twins and siblings are given close first names; see
    ///   [`MatchConfig::may_link`]);
    /// - birth dates one typed digit apart link automatically without the same INS only if the
    ///   birth name and the list of first names are identical (see [`MatchConfig::may_link`]);
    /// - a homonym (HOMON) goes to review rather than being linked;
    /// - birth names that agree neither in spelling, nor in sound, nor through a used name never
    ///   link automatically: everything else being equal, that is two persons born the same day
    ///   in the same place, which a region of 3.4 million people produces every week.
    pub fn decide(&self, a: &MatchRecord, b: &MatchRecord) -> (Decision, f64, Comparison) {
        let c = compare(a, b);
        let score = self.score(&c);
        if a.fictitious || b.fictitious {
            return (Decision::Distinct, score, c);
        }
        let both_retrieved = a.ins_retrieved && b.ins_retrieved;
        if both_retrieved && c.levels[5] == 1 {
            return (Decision::Distinct, score, c);
        }
        let mut decision = if (both_retrieved && c.levels[5] == 0) || score >= self.link_threshold {
            Decision::Link
        } else if score >= self.review_threshold {
            Decision::Review
        } else {
            Decision::Distinct
        };
        if decision == Decision::Link && (!Self::may_link(&c) || a.homonym || b.homonym) {
            decision = Decision::Review;
        }
        (decision, score, c)
    }
}

/// Estimates weights from labelled pairs: `log2(m/u)` with add-one smoothing, so that a level
/// never seen on one side gets a large but finite weight.
pub fn estimate_weights<I>(pairs: I) -> [[f64; LEVELS]; 6]
where
    I: IntoIterator<Item = (Comparison, bool)>,
{
    estimate_weights_counted(
        pairs
            .into_iter()
            .map(|(c, is_match)| (c, u64::from(is_match), u64::from(!is_match))),
    )
}

/// [`estimate_weights`] from a histogram: each distinct comparison with its numbers of true
/// matches and of non-matches (what a streaming pass over millions of pairs produces).
pub fn estimate_weights_counted<I>(histogram: I) -> [[f64; LEVELS]; 6]
where
    I: IntoIterator<Item = (Comparison, u64, u64)>,
{
    let mut m = [[1u64; LEVELS]; 6];
    let mut u = [[1u64; LEVELS]; 6];
    for (c, matches, non_matches) in histogram {
        for (f, &l) in c.levels.iter().enumerate() {
            m[f][l as usize] += matches;
            u[f][l as usize] += non_matches;
        }
    }
    let mut w = [[0.0; LEVELS]; 6];
    for f in 0..6 {
        let (mt, ut): (u64, u64) = (m[f].iter().sum(), u[f].iter().sum());
        for l in 0..LEVELS - 1 {
            // A level no pair showed (a comparator with fewer levels) carries no evidence.
            if m[f][l] == 1 && u[f][l] == 1 {
                continue;
            }
            let p_m = m[f][l] as f64 / mt as f64;
            let p_u = u[f][l] as f64 / ut as f64;
            w[f][l] = (p_m / p_u).log2();
        }
    }
    w
}

/// Chooses thresholds from scored, labelled training pairs `(score, may_link, is_match)`, with
/// error rates fixed beforehand: the link threshold is `margin` bits above the highest-scoring
/// non-match that the rules would let link (no false link on the training set, with room for the
/// test set); the review threshold is the highest score that still keeps `review_recall` of true
/// matches at or above it.
pub fn choose_thresholds(
    scored: &mut [(f64, bool, bool)],
    margin: f64,
    review_recall: f64,
) -> (f64, f64) {
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let max_non_match = scored
        .iter()
        .filter(|(_, may_link, m)| *may_link && !m)
        .map(|(s, _, _)| *s)
        .fold(f64::NEG_INFINITY, f64::max);
    let link = max_non_match + margin;
    let matches: Vec<f64> = scored
        .iter()
        .filter(|(_, _, m)| *m)
        .map(|(s, _, _)| *s)
        .collect();
    let review = if matches.is_empty() {
        link
    } else {
        let idx = ((1.0 - review_recall) * matches.len() as f64).floor() as usize;
        matches[idx.min(matches.len() - 1)].min(link)
    };
    (link, review)
}

/// [`choose_thresholds`] from a histogram of scores: `(score, may_link, matches, non_matches)`.
pub fn choose_thresholds_counted(
    scored: &mut [(f64, bool, u64, u64)],
    margin: f64,
    review_recall: f64,
) -> (f64, f64) {
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let max_non_match = scored
        .iter()
        .filter(|(_, may_link, _, n)| *may_link && *n > 0)
        .map(|(s, _, _, _)| *s)
        .fold(f64::NEG_INFINITY, f64::max);
    let link = max_non_match + margin;
    let total: u64 = scored.iter().map(|(_, _, m, _)| m).sum();
    if total == 0 {
        return (link, link);
    }
    let idx = ((1.0 - review_recall) * total as f64).floor() as u64;
    let idx = idx.min(total - 1);
    let mut seen = 0;
    let mut review = link;
    for (s, _, m, _) in scored.iter() {
        seen += m;
        if seen > idx {
            review = *s;
            break;
        }
    }
    (link, review.min(link))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sex;

    /// A record's features with no used name, INS not retrieved from INSi.
    fn record(
        birth_name: &str,
        first_names: &[&str],
        date: (i32, u8, u8),
        birthplace: Option<&str>,
        ins: Option<&str>,
    ) -> MatchRecord {
        let first = first_first_name(first_names);
        MatchRecord {
            birth_joined: surname_joined(birth_name),
            birth_core: surname_core(birth_name),
            birth_phonetic: phonetic(&surname_core(birth_name)),
            used_joined: None,
            used_phonetic: None,
            first_phonetic: phonetic(&first),
            first_first: first,
            first_words: first_name_words(first_names),
            other_first_names: first_names[1..].iter().map(|n| surname_joined(n)).collect(),
            birth_date: Date::from_calendar_date(
                date.0,
                time::Month::try_from(date.1).unwrap(),
                date.2,
            )
            .unwrap(),
            sex: Sex::Female,
            birthplace: birthplace.map(str::to_string),
            ins: ins.map(str::to_string),
            ins_retrieved: false,
            fictitious: false,
            homonym: false,
        }
    }

    const INS: &str = "290102905100129";
    const OTHER_INS: &str = "290102905100226";

    fn decision(a: &MatchRecord, b: &MatchRecord) -> (Decision, Comparison) {
        let (d, _, c) = MatchConfig::default().decide(a, b);
        (d, c)
    }

    #[test]
    fn twins_with_close_first_names_are_not_linked() {
        let marie = record(
            "Le Goff",
            &["Marie"],
            (1990, 10, 10),
            Some("29019"),
            Some(INS),
        );
        // The twin's record has no INS: everything but the first name agrees.
        let marina = record("Le Goff", &["Marina"], (1990, 10, 10), Some("29019"), None);
        let (d, c) = decision(&marie, &marina);
        assert_eq!(c.levels[1], FIRST_NAMES_OTHER_CLOSE_NAME);
        assert!(!MatchConfig::may_link(&c));
        assert_eq!(d, Decision::Review, "{c:?}");
        // With both INS, they differ: not a link either.
        let marina = record(
            "Le Goff",
            &["Marina"],
            (1990, 10, 10),
            Some("29019"),
            Some(OTHER_INS),
        );
        assert_ne!(decision(&marie, &marina).0, Decision::Link);
        // `LENA` / `LINA`: one letter apart, but two real names.
        let lena = record("Le Goff", &["Léna"], (2015, 1, 3), Some("29019"), None);
        let lina = record("Le Goff", &["Lina"], (2015, 1, 3), Some("29019"), Some(INS));
        let (d, c) = decision(&lena, &lina);
        assert_eq!(c.levels[1], FIRST_NAMES_OTHER_CLOSE_NAME);
        assert_ne!(d, Decision::Link);
    }

    #[test]
    fn two_close_real_names_with_the_same_ins_link() {
        let a = record(
            "Le Goff",
            &["Marie"],
            (1990, 10, 10),
            Some("29019"),
            Some(INS),
        );
        let b = record(
            "Le Goff",
            &["Marina"],
            (1990, 10, 10),
            Some("29019"),
            Some(INS),
        );
        let (d, c) = decision(&a, &b);
        assert!(MatchConfig::may_link(&c));
        assert_eq!(d, Decision::Link);
    }

    #[test]
    fn a_one_letter_typo_in_the_first_name_links() {
        let a = record(
            "Le Goff",
            &["Marie"],
            (1990, 10, 10),
            Some("29019"),
            Some(INS),
        );
        // Same INS on both sides.
        let b = record("LE GOFF", &["MARXIE"], (1990, 10, 10), None, Some(INS));
        let (d, c) = decision(&a, &b);
        assert_eq!(c.levels[1], FIRST_NAMES_MISSPELT);
        assert_eq!(d, Decision::Link, "{c:?}");
        // INS missing on one side, birthplace agreeing: the score decides, and links.
        let b = record("LE GOFF", &["MARXIE"], (1990, 10, 10), Some("29019"), None);
        assert_eq!(decision(&a, &b).0, Decision::Link);
    }

    #[test]
    fn a_one_digit_date_with_another_approximation_is_not_linked() {
        // Homonyms born in the same town eleven days apart: the later record has only the first
        // first name and no INS. Scored alone, this looks like a duplicate with two typing errors.
        let a = record(
            "Le Goff",
            &["Nathalie", "Anne"],
            (1968, 5, 12),
            Some("29019"),
            Some(INS),
        );
        let b = record("LE GOFF", &["NATHALIE"], (1968, 5, 22), Some("29019"), None);
        let (d, c) = decision(&a, &b);
        assert_eq!(c.levels[..3], [0, 1, BIRTH_DATE_ONE_DIGIT]);
        assert!(!MatchConfig::may_link(&c));
        assert_eq!(d, Decision::Review, "{c:?}");
        // The same with a misspelt first name instead of a shortened list.
        let b = record(
            "LE GOFF",
            &["NATHALEI", "ANNE"],
            (1968, 5, 22),
            Some("29019"),
            None,
        );
        let (d, c) = decision(&a, &b);
        assert_eq!(
            c.levels[..3],
            [0, FIRST_NAMES_MISSPELT, BIRTH_DATE_ONE_DIGIT]
        );
        assert_ne!(d, Decision::Link, "{c:?}");
        // With the same INS on both sides the date is only mistyped.
        let b = record("LE GOFF", &["NATHALIE"], (1968, 5, 22), None, Some(INS));
        assert_eq!(decision(&a, &b).0, Decision::Link);
    }

    #[test]
    fn a_duplicate_with_one_typing_error_links() {
        let a = record(
            "Le Goff",
            &["Nathalie", "Anne"],
            (1968, 5, 12),
            Some("29019"),
            Some(INS),
        );
        // The date one digit away is the only difference, INS missing on one side: linked.
        let b = record(
            "LE GOFF",
            &["NATHALIE", "ANNE"],
            (1968, 5, 13),
            Some("29019"),
            None,
        );
        let (d, c) = decision(&a, &b);
        assert_eq!(c.levels[..3], [0, 0, BIRTH_DATE_ONE_DIGIT]);
        assert_eq!(d, Decision::Link, "{c:?}");
        // A misspelt first name with the same date: linked.
        let b = record(
            "LE GOFF",
            &["NATHALEI", "ANNE"],
            (1968, 5, 12),
            Some("29019"),
            None,
        );
        assert_eq!(decision(&a, &b).0, Decision::Link);
        // Only the first first name, same date: linked.
        let b = record("LE GOFF", &["NATHALIE"], (1968, 5, 12), Some("29019"), None);
        assert_eq!(decision(&a, &b).0, Decision::Link);
    }

    #[test]
    fn without_birthplace_nor_ins_only_identical_traits_link() {
        let a = record(
            "Brun",
            &["Christophe", "Jean-Noël"],
            (1976, 3, 24),
            None,
            None,
        );
        let b = record(
            "Brun",
            &["Christophe"],
            (1976, 3, 24),
            Some("29019"),
            Some(INS),
        );
        let (d, c) = decision(&a, &b);
        assert_eq!(c.levels[4..], [MISSING, MISSING]);
        assert!(!MatchConfig::may_link(&c));
        assert_eq!(d, Decision::Review, "{c:?}");
        let b = record(
            "BRUN",
            &["CHRISTOPHE", "JEAN NOEL"],
            (1976, 3, 24),
            None,
            Some(INS),
        );
        assert_eq!(decision(&a, &b).0, Decision::Link);
        // A misspelt first name with both traits missing: review.
        let b = record(
            "Brun",
            &["Christohpe", "Jean-Noël"],
            (1976, 3, 24),
            None,
            Some(INS),
        );
        assert_eq!(decision(&a, &b).0, Decision::Review);
    }
}
