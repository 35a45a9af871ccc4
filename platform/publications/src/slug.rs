//! Slugs: the readable, stable part of an article's address (`/publications/{slug}`), made
//! once from the title when the article is created. Accents are folded ("Droits des patients à
//! l'hôpital" → `droits-des-patients-a-l-hopital`), anything else than ASCII letters and digits
//! separates words, and long titles are cut at a word boundary.

use crate::fold::fold;

/// Longest slug, before a uniqueness suffix.
pub const MAX_SLUG: usize = 80;

/// The slug of a title; `article` when the title has no letter or digit to keep.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for word in fold(title)
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let extra = usize::from(!slug.is_empty()) + word.len();
        if slug.len() + extra > MAX_SLUG {
            if slug.is_empty() {
                slug.push_str(&word[..MAX_SLUG]);
            }
            break;
        }
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(word);
    }
    if slug.is_empty() {
        "article".to_string()
    } else {
        slug
    }
}

/// The `n`-th candidate for a slug already taken: `base`, `base-2`, `base-3`…
pub fn candidate(base: &str, n: u32) -> String {
    if n <= 1 {
        base.to_string()
    } else {
        format!("{base}-{n}")
    }
}

/// Whether a path segment can be a slug (lower-case ASCII letters, digits, single hyphens).
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SLUG + 11
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_of_french_titles() {
        let cases = [
            (
                "Droits des patients à l'hôpital",
                "droits-des-patients-a-l-hopital",
            ),
            (
                "Maladie rénale chronique : le parcours en Bretagne",
                "maladie-renale-chronique-le-parcours-en-bretagne",
            ),
            ("Œdème et cœur — 2026 !", "oedeme-et-coeur-2026"),
            ("   ", "article"),
            ("«  »", "article"),
            ("Ça marche ?", "ca-marche"),
        ];
        for (title, slug) in cases {
            assert_eq!(slugify(title), slug, "{title}");
            assert!(is_slug(&slugify(title)), "{title}");
        }
    }

    #[test]
    fn long_titles_are_cut_between_words() {
        let title = "Recommandations régionales pour le dépistage précoce de la maladie rénale \
                     chronique chez les patients diabétiques et hypertendus";
        let slug = slugify(title);
        assert!(slug.len() <= MAX_SLUG, "{slug}");
        assert!(slug.starts_with("recommandations-regionales-pour-le-depistage"));
        assert!(!slug.ends_with('-'));
        assert_eq!(slugify(&"a".repeat(200)).len(), MAX_SLUG);
    }

    #[test]
    fn candidates_and_validation() {
        assert_eq!(candidate("acces", 1), "acces");
        assert_eq!(candidate("acces", 2), "acces-2");
        for bad in ["", "-a", "a-", "a--b", "A", "a b", "é", "../etc"] {
            assert!(!is_slug(bad), "{bad}");
        }
        assert!(is_slug("acces-au-dossier-2"));
    }
}
