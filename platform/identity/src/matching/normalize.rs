//! French name normalisation, applied before any comparison.
//!
//! Hospitals type names with or without accents, in capitals or not, with hyphens, apostrophes
//! or spaces between compound parts (`Jean-Pierre`, `JEAN PIERRE`), and with or without the
//! particle (`de la Villemarqué`, `LA VILLEMARQUE`). Normalisation removes what carries no
//! identity: diacritics (by canonical decomposition), case, punctuation; ligatures are spelled
//! out (`Œ` → `OE`). Particles are *not* removed from the stored name: the comparators look at
//! both forms, since `LE GOFF` and `GOFF` are different Breton families while `DE KERGUELEN` and
//! `KERGUELEN` are usually the same.

use unicode_normalization::UnicodeNormalization;

/// Particles that French civil registers may or may not keep in front of a surname.
const PARTICLES: &[&str] = &["DE", "D", "DU", "DES", "LA", "DELA"];

/// Upper-case ASCII letters and single spaces only: `"d'Arc-Lefèvre "` → `"D ARC LEFEVRE"`.
pub fn normalize_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = true; // swallow leading separators
    for c in s.nfd() {
        let mapped: &str = match c {
            'œ' | 'Œ' => "OE",
            'æ' | 'Æ' => "AE",
            'ß' => "SS",
            _ => "",
        };
        if !mapped.is_empty() {
            out.push_str(mapped);
            space = false;
        } else if c.is_ascii_alphabetic() {
            out.push(c.to_ascii_uppercase());
            space = false;
        } else if unicode_normalization::char::is_combining_mark(c) {
            // diacritic of the previous letter: dropped
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    while out.ends_with(' ') {
        out.pop();
    }
    out
}

/// The surname without leading particles, words joined: `"de la Villemarqué"` → `"VILLEMARQUE"`.
/// Used alongside the full form; a name made only of particles is kept as it is.
pub fn surname_core(s: &str) -> String {
    let n = normalize_name(s);
    let words: Vec<&str> = n.split(' ').collect();
    let skip = words.iter().take_while(|w| PARTICLES.contains(w)).count();
    if skip == words.len() {
        return words.concat();
    }
    words[skip..].concat()
}

/// The full surname with words joined: `"LE GOFF"` and `"LEGOFF"` compare equal.
pub fn surname_joined(s: &str) -> String {
    normalize_name(s).replace(' ', "")
}

/// The words of a list of first names, compound names split: `["Jean-Pierre", "Marie"]` →
/// `["JEAN", "PIERRE", "MARIE"]`.
pub fn first_name_words<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    names
        .iter()
        .flat_map(|n| {
            normalize_name(n.as_ref())
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The first (usual) birth first name, compound kept together and joined:
/// `["Jean-Pierre", "Marie"]` → `"JEANPIERRE"`. Hospitals often only type the first one.
pub fn first_first_name<S: AsRef<str>>(names: &[S]) -> String {
    names
        .first()
        .map(|n| normalize_name(n.as_ref()).replace(' ', ""))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_table() {
        let cases = [
            ("Lefèvre", "LEFEVRE"),
            ("  d'Arc-Lefèvre ", "D ARC LEFEVRE"),
            ("Œillet", "OEILLET"),
            ("Gwenaël", "GWENAEL"),
            ("JEAN--PIERRE", "JEAN PIERRE"),
            ("Çelik", "CELIK"),
            ("Le Hénaff", "LE HENAFF"),
            ("", ""),
            ("123", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_name(input), expected, "{input}");
        }
    }

    #[test]
    fn surname_forms() {
        let cases = [
            ("de la Villemarqué", "VILLEMARQUE", "DELAVILLEMARQUE"),
            ("DE KERGUELEN", "KERGUELEN", "DEKERGUELEN"),
            ("Le Goff", "LEGOFF", "LEGOFF"),
            ("d'Arc", "ARC", "DARC"),
            ("Du", "DU", "DU"),
        ];
        for (input, core, joined) in cases {
            assert_eq!(surname_core(input), core, "{input}");
            assert_eq!(surname_joined(input), joined, "{input}");
        }
    }

    #[test]
    fn first_names() {
        assert_eq!(
            first_name_words(&["Jean-Pierre", "Marie"]),
            ["JEAN", "PIERRE", "MARIE"]
        );
        assert_eq!(first_first_name(&["Jean Pierre", "Marie"]), "JEANPIERRE");
        assert_eq!(first_first_name::<&str>(&[]), "");
    }
}
