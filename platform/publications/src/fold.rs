//! Text folding for search and slugs: French readers type "renale" for "rénale", "oeil" for
//! "œil", "ETP" for "etp". Folding removes accents (canonical decomposition, combining marks
//! dropped), expands the ligatures decomposition leaves alone (œ, æ, ß), and lower-cases.
//!
//! Search works on words: [`words`] splits folded text on anything that is not a letter or a
//! digit (so "l'insuffisance" gives "insuffisance" and "rein-greffe" gives two words) and
//! drops one-letter words and the most common French and English function words, which would
//! match every article.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Longest word kept in the search index (longer runs are cut there, queries too).
pub const MAX_WORD: usize = 48;

/// Accents removed, ligatures expanded, lower case: `"Œdème RÉNAL"` → `"oedeme renal"`.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'œ' | 'Œ' => out.push_str("oe"),
            'æ' | 'Æ' => out.push_str("ae"),
            'ß' | 'ẞ' => out.push_str("ss"),
            'ø' | 'Ø' => out.push('o'),
            'đ' | 'Đ' => out.push('d'),
            'ł' | 'Ł' => out.push('l'),
            // Typographic apostrophes and dashes behave as their ASCII forms.
            '\u{2019}' | '\u{2018}' | '\u{02BC}' => out.push('\''),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Words too common to tell articles apart (folded forms).
const STOP_WORDS: &[&str] = &[
    "au", "aux", "avec", "ce", "ces", "cet", "cette", "dans", "de", "des", "du", "elle", "en",
    "est", "et", "il", "la", "le", "les", "leur", "leurs", "ou", "par", "pour", "qu", "que", "qui",
    "sa", "se", "ses", "son", "sont", "sur", "un", "une", "vos", "votre", "an", "and", "are",
    "for", "in", "is", "of", "on", "or", "the", "to", "with",
];

fn is_stop_word(w: &str) -> bool {
    STOP_WORDS.contains(&w)
}

/// Folded alphanumeric runs of `text`, in order, with one-letter words and stop words left out;
/// each cut to [`MAX_WORD`] characters. Duplicates are kept (callers dedupe when they need to).
pub fn words(text: &str) -> Vec<String> {
    fold(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 1 && !is_stop_word(w))
        .map(|w| w.chars().take(MAX_WORD).collect())
        .collect()
}

/// The smallest string greater than every string that starts with `prefix`, in byte order
/// (SQLite's BINARY collation, PostgreSQL's `COLLATE "C"`): `term >= prefix AND term < end`
/// is then a range scan of an index. Folded words never contain U+10FFFF.
pub fn prefix_end(prefix: &str) -> String {
    let mut end = String::with_capacity(prefix.len() + 4);
    end.push_str(prefix);
    end.push(char::MAX);
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_french_text() {
        let cases = [
            ("Maladie rénale chronique", "maladie renale chronique"),
            ("ŒDÈME, cœur et nævus", "oedeme, coeur et naevus"),
            ("Français À l’hôpital", "francais a l'hopital"),
            ("Ça NE s'écrit pas ÇA", "ca ne s'ecrit pas ca"),
            ("Straße Øresund", "strasse oresund"),
            ("déjà-vu naïf Noël", "deja-vu naif noel"),
            ("ﬁchier", "fichier"),
        ];
        for (input, folded) in cases {
            assert_eq!(fold(input), folded, "{input}");
        }
    }

    #[test]
    fn words_drop_function_words_and_split_elisions() {
        assert_eq!(
            words("Les droits des patients à l’hôpital : l'accès au dossier"),
            ["droits", "patients", "hopital", "acces", "dossier"]
        );
        assert_eq!(
            words("Parcours IRC — stade 3a"),
            ["parcours", "irc", "stade", "3a"]
        );
        assert_eq!(words("a à y"), Vec::<String>::new());
        let long = "x".repeat(100);
        assert_eq!(words(&long)[0].len(), MAX_WORD);
    }

    #[test]
    fn prefix_range_holds_exactly_the_words_with_the_prefix() {
        let end = prefix_end("ren");
        for inside in ["ren", "renal", "renale", "renz"] {
            assert!(inside >= "ren" && inside < end.as_str(), "{inside}");
        }
        for outside in ["rem", "reo", "re", "rf"] {
            assert!(!(outside >= "ren" && outside < end.as_str()), "{outside}");
        }
    }
}
