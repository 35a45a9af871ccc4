//! Markdown to safe HTML.
//!
//! Editors write CommonMark (with tables and strikethrough); [`render`] turns it into HTML with
//! `pulldown-cmark` and then sanitises *everything* with `ammonia`, raw HTML blocks included:
//! only an allow-list of tags and attributes survives, `<script>`/`<style>` lose their content,
//! event-handler attributes (`onerror=`…) are dropped, links and images keep only `http`,
//! `https` and `mailto` URLs (or relative ones), and every link gets
//! `rel="noopener noreferrer"`. Headings are shifted so that the text's top level becomes
//! `<h2>` (`#` or `##` alike), keeping their order without gaps under the page's one `<h1>`,
//! the article's title.

use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH
}

static SANITISER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer"))
        .url_relative(ammonia::UrlRelative::PassThrough)
        // Tables keep their header cells' scope (accessibility); nothing else is added to
        // ammonia's default allow-list, which has no event handler and no `style`.
        .add_tag_attributes("th", ["scope"])
        // The page's one <h1> is the title: a raw <h1> in the text keeps only its words.
        .rm_tags(["h1"]);
    b
});

fn rank(level: HeadingLevel) -> usize {
    level as usize
}

fn level(rank: usize) -> HeadingLevel {
    match rank {
        0..=2 => HeadingLevel::H2,
        3 => HeadingLevel::H3,
        4 => HeadingLevel::H4,
        5 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

/// Markdown → sanitised HTML, safe to put in a page as is.
pub fn render(markdown: &str) -> String {
    let events: Vec<Event> = Parser::new_ext(markdown, options()).collect();
    let top = events
        .iter()
        .filter_map(|e| match e {
            Event::Start(Tag::Heading { level, .. }) => Some(rank(*level)),
            _ => None,
        })
        .min()
        .unwrap_or(2);
    // The top level becomes h2, the others follow (at most h6); `top` is the smallest rank.
    let level_of = |l: HeadingLevel| level(rank(l) + 2 - top);
    let events = events.into_iter().map(|event| match event {
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Event::Start(Tag::Heading {
            level: level_of(level),
            id,
            classes,
            attrs,
        }),
        Event::End(TagEnd::Heading(level)) => Event::End(TagEnd::Heading(level_of(level))),
        other => other,
    });
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    SANITISER.clean(&html).to_string()
}

/// The text a reader sees, without markup: for summaries and the search index. Raw HTML is
/// left out (it is markup, and may be what the sanitiser removes).
pub fn plain_text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let space = |out: &mut String| {
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    };
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak | Event::Rule => space(&mut out),
            Event::End(TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::Item)
            | Event::End(TagEnd::TableCell | TagEnd::CodeBlock | TagEnd::BlockQuote(_)) => {
                space(&mut out)
            }
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The opening of the text, at most `max_chars` characters, cut at a word boundary with "…".
pub fn summary(markdown: &str, max_chars: usize) -> String {
    let text = plain_text(markdown);
    if text.chars().count() <= max_chars {
        return text;
    }
    // One character more than allowed: a space there means the cut falls between words.
    let head: String = text.chars().take(max_chars + 1).collect();
    let mut cut = match head.rfind(' ') {
        Some(space) => head[..space].to_string(),
        None => head.chars().take(max_chars).collect(),
    };
    cut = cut
        .trim_end_matches(|c: char| c.is_whitespace() || ",;:".contains(c))
        .to_string();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_commonmark() {
        let html = render("# Titre\n\nDu **gras**, de l'*italique* et `code`.\n\n- un\n- deux\n");
        assert!(html.contains("<h2>Titre</h2>"), "{html}");
        assert!(html.contains("<strong>gras</strong>"));
        assert!(html.contains("<em>italique</em>"));
        assert!(html.contains("<code>code</code>"));
        assert!(html.contains("<li>un</li>"));
        assert!(!html.contains("<h1"), "the page's h1 is the title");
        // The text's top heading level becomes h2, whatever it was; order is kept, no gaps.
        let cases = [
            ("# A\n## B\n### C", "<h2>A</h2>\n<h3>B</h3>\n<h4>C</h4>\n"),
            ("## A\n### B", "<h2>A</h2>\n<h3>B</h3>\n"),
            (
                "### A\n#### B\n### C",
                "<h2>A</h2>\n<h3>B</h3>\n<h2>C</h2>\n",
            ),
            ("# A\n###### F", "<h2>A</h2>\n<h6>F</h6>\n"),
        ];
        for (md, expected) in cases {
            assert_eq!(render(md), expected, "{md}");
        }
        let table = render("| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(
            table.contains("<table>") && table.contains("<th>a</th>"),
            "{table}"
        );
    }

    #[test]
    fn links_are_kept_safe() {
        let html =
            render("[ANS](https://esante.gouv.fr) [mail](mailto:a@b.fr) [rel](/publications)");
        assert!(
            html.contains(r#"<a href="https://esante.gouv.fr" rel="noopener noreferrer">ANS</a>"#),
            "{html}"
        );
        assert!(html.contains(r#"href="mailto:a@b.fr""#));
        assert!(html.contains(r#"href="/publications""#));
        for evil in [
            "[x](javascript:alert(1))",
            "[x](JaVaScRiPt:alert(1))",
            "[x](  javascript:alert(1))",
            "[x](java&#x09;script:alert(1))",
            "[x](vbscript:msgbox)",
            "[x](data:text/html;base64,PHNjcmlwdD4=)",
            "<a href=\"javascript:alert(1)\">x</a>",
            "![x](javascript:alert(1))",
        ] {
            let html = render(evil);
            assert!(
                !html.to_ascii_lowercase().contains("href=\"javascript"),
                "{evil}: {html}"
            );
            assert!(!html.contains("src=\"javascript"), "{evil}: {html}");
            assert!(
                !html.contains("vbscript:") && !html.contains("data:text"),
                "{evil}: {html}"
            );
        }
    }

    #[test]
    fn raw_html_is_sanitised() {
        let cases = [
            "<script>alert(1)</script>",
            "Texte <script>alert(1)</script> suite",
            "<img src=x onerror=alert(1)>",
            "<p onclick=\"alert(1)\">x</p>",
            "<iframe src=\"https://evil.test\"></iframe>",
            "<svg onload=alert(1)><circle/></svg>",
            "<style>body{display:none}</style>",
            "<a href=\"#\" onmouseover=\"alert(1)\">x</a>",
            "<div style=\"background:url(javascript:alert(1))\">x</div>",
            "<form action=\"https://evil.test\"><input name=p></form>",
        ];
        for input in cases {
            let html = render(input);
            let lower = html.to_ascii_lowercase();
            for bad in [
                "<script",
                "onerror",
                "onclick",
                "onload",
                "onmouseover",
                "<iframe",
                "<style",
                "<svg",
                "style=",
                "<form",
                "<input",
                "javascript:",
            ] {
                assert!(!lower.contains(bad), "{input} → {html}");
            }
        }
        assert_eq!(render("<h1>Titre brut</h1>"), "Titre brut");
        // What is allowed survives.
        assert_eq!(render("<em>oui</em>"), "<p><em>oui</em></p>\n");
        assert!(render("Texte <script>alert(1)</script> suite").contains("Texte"));
    }

    #[test]
    fn plain_text_and_summaries() {
        let md = "# Vos droits\n\nVous pouvez **consulter** votre [dossier](/d).\n\n\
                  <script>alert(1)</script>\n\n<b>gras</b>\n\n- un\n- deux";
        assert_eq!(
            plain_text(md),
            "Vos droits Vous pouvez consulter votre dossier. gras un deux"
        );
        assert_eq!(summary(md, 200), plain_text(md));
        assert_eq!(summary(md, 22), "Vos droits Vous pouvez…");
        assert_eq!(summary(md, 25), "Vos droits Vous pouvez…");
        assert_eq!(summary(md, 21), "Vos droits Vous…");
        assert_eq!(summary("Anticonstitutionnellement", 5), "Antic…");
    }
}
