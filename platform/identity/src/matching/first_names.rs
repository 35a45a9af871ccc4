//! Known given names: two different first names that are both real given names are two names,
//! not a typing error of one another (`MARIE` / `MARINA`), however close their spelling or sound.
//!
//! The list is the given-name vocabulary of this crate ([`crate::synth`]: a few hundred real
//! French and Breton given names, simple and compound, of both sexes), normalised as the
//! comparator normalises (`Jean-Pierre` → `JEANPIERRE`). It stands for the INSEE first-name file
//! (*fichier des prénoms*), which a production index should load instead: with a longer list,
//! more typing errors land on another real name and go to review rather than link (the safe
//! direction); with a list that misses a rare name, a misspelling of it is taken for one.

use std::collections::HashSet;
use std::sync::OnceLock;

use super::normalize::first_first_name;
use crate::Sex;

fn known() -> &'static HashSet<String> {
    static K: OnceLock<HashSet<String>> = OnceLock::new();
    K.get_or_init(|| {
        [Sex::Female, Sex::Male]
            .into_iter()
            .flat_map(|s| crate::synth::first_name_vocabulary_of(s).names.iter())
            .map(|n| first_first_name(&[n]))
            .collect()
    })
}

/// Whether `name` (normalised and joined, as [`super::model::MatchRecord::first_first`]) is a
/// known given name.
pub fn is_known_first_name(name: &str) -> bool {
    known().contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_names_are_known_and_typos_are_not() {
        for name in ["MARIE", "MARINA", "JEANPIERRE", "YANN", "CHRISTOPHE"] {
            assert!(is_known_first_name(name), "{name}");
        }
        for name in ["MARXIE", "CHRISTOHPE", "JEAN PIERRE", ""] {
            assert!(!is_known_first_name(name), "{name}");
        }
    }
}
