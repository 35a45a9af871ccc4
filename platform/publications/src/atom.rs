//! An Atom 1.0 feed writer (RFC 4287).
//!
//! Every feed and entry has the elements the RFC requires — `id` (a `tag:` URI for the feed,
//! `urn:uuid:` for entries), `title`, `updated` (RFC 3339) and an `author` (on each entry) —
//! plus `link rel="self"` and `rel="alternate"`, `published`, `category`, a text `summary` and
//! the sanitised HTML `content` (escaped, `type="html"`). All text is XML-escaped; characters
//! XML 1.0 forbids (C0 controls other than tab, line feed and carriage return; U+FFFE, U+FFFF)
//! are dropped rather than written.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The feed.
#[derive(Debug, Clone)]
pub struct Feed {
    /// A permanent, unique IRI: see [`feed_id`].
    pub id: String,
    pub title: String,
    pub subtitle: Option<String>,
    /// `xml:lang` of the feed's text.
    pub lang: String,
    pub updated_us: i64,
    /// Where the feed itself is served.
    pub self_url: String,
    /// The HTML page the feed mirrors.
    pub alternate_url: String,
    pub entries: Vec<Entry>,
}

/// One article in the feed.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `urn:uuid:…`: see [`entry_id`].
    pub id: String,
    pub title: String,
    pub url: String,
    pub published_us: i64,
    pub updated_us: i64,
    pub author: String,
    pub summary: String,
    /// Sanitised HTML (already safe); written escaped as `type="html"`.
    pub content_html: String,
    /// (term, label) of each tag.
    pub categories: Vec<(String, String)>,
}

/// The feed id of a platform: a `tag:` URI (RFC 4151) minted from the host of its public URL,
/// so that two regions' feeds never share an id and a feed keeps its id when its path moves.
pub fn feed_id(host: &str) -> String {
    format!("tag:{host},2026:megalis/publications")
}

/// An entry id: the article's UUID as a URN (RFC 4122), stable across title and slug changes.
pub fn entry_id(article_id: &str) -> String {
    format!("urn:uuid:{article_id}")
}

/// RFC 3339 in UTC, to the second (`2026-03-01T08:00:00Z`).
pub fn rfc3339(us: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(us.div_euclid(1_000_000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Text or attribute value, escaped for XML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars().filter(|&c| is_xml_char(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn element(out: &mut String, indent: &str, name: &str, attrs: &str, text: &str) {
    out.push_str(indent);
    out.push('<');
    out.push_str(name);
    out.push_str(attrs);
    out.push('>');
    out.push_str(&escape(text));
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

fn link(out: &mut String, indent: &str, rel: &str, media: &str, href: &str) {
    out.push_str(&format!(
        "{indent}<link rel=\"{rel}\" type=\"{media}\" href=\"{}\"/>\n",
        escape(href)
    ));
}

/// The feed document, UTF-8.
pub fn write(feed: &Feed) -> String {
    let mut out = String::with_capacity(1024 + feed.entries.len() * 2048);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str(&format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{}\">\n",
        escape(&feed.lang)
    ));
    element(&mut out, "  ", "id", "", &feed.id);
    element(&mut out, "  ", "title", " type=\"text\"", &feed.title);
    if let Some(s) = &feed.subtitle {
        element(&mut out, "  ", "subtitle", " type=\"text\"", s);
    }
    element(&mut out, "  ", "updated", "", &rfc3339(feed.updated_us));
    link(
        &mut out,
        "  ",
        "self",
        "application/atom+xml",
        &feed.self_url,
    );
    link(
        &mut out,
        "  ",
        "alternate",
        "text/html",
        &feed.alternate_url,
    );
    element(&mut out, "  ", "generator", "", "Megalis");
    for e in &feed.entries {
        out.push_str("  <entry>\n");
        element(&mut out, "    ", "id", "", &e.id);
        element(&mut out, "    ", "title", " type=\"text\"", &e.title);
        link(&mut out, "    ", "alternate", "text/html", &e.url);
        element(&mut out, "    ", "published", "", &rfc3339(e.published_us));
        element(&mut out, "    ", "updated", "", &rfc3339(e.updated_us));
        out.push_str("    <author>\n");
        element(&mut out, "      ", "name", "", &e.author);
        out.push_str("    </author>\n");
        for (term, label) in &e.categories {
            out.push_str(&format!(
                "    <category term=\"{}\" label=\"{}\"/>\n",
                escape(term),
                escape(label)
            ));
        }
        element(&mut out, "    ", "summary", " type=\"text\"", &e.summary);
        element(
            &mut out,
            "    ",
            "content",
            " type=\"html\"",
            &e.content_html,
        );
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Feed {
        Feed {
            id: feed_id("sante.bzh"),
            title: "Publications & <actualités>".into(),
            subtitle: Some("Région \"Bretagne\"".into()),
            lang: "fr".into(),
            updated_us: 1_772_352_000_000_000,
            self_url: "https://sante.bzh/publications/feed.atom?a=1&b=2".into(),
            alternate_url: "https://sante.bzh/publications".into(),
            entries: vec![Entry {
                id: entry_id("6f1c1f1e-0d5e-4b8e-9a57-1d2f3a4b5c6d"),
                title: "Droits <des> patients & \u{1}accès".into(),
                url: "https://sante.bzh/publications/droits".into(),
                published_us: 1_772_352_000_000_000,
                updated_us: 1_772_355_600_500_000,
                author: "Équipe O'Neil".into(),
                summary: "Résumé".into(),
                content_html: "<p>Un <a href=\"https://x.test/?a=1&amp;b=2\">lien</a></p>".into(),
                categories: vec![("droits-des-patients".into(), "Droits des patients".into())],
            }],
        }
    }

    #[test]
    fn writes_a_well_formed_feed_with_the_required_elements() {
        let xml = write(&sample());
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"fr\">"));
        for expected in [
            "<id>tag:sante.bzh,2026:megalis/publications</id>",
            "<title type=\"text\">Publications &amp; &lt;actualités&gt;</title>",
            "<subtitle type=\"text\">Région &quot;Bretagne&quot;</subtitle>",
            "<updated>2026-03-01T08:00:00Z</updated>",
            "<link rel=\"self\" type=\"application/atom+xml\" href=\"https://sante.bzh/publications/feed.atom?a=1&amp;b=2\"/>",
            "<link rel=\"alternate\" type=\"text/html\" href=\"https://sante.bzh/publications\"/>",
            "<id>urn:uuid:6f1c1f1e-0d5e-4b8e-9a57-1d2f3a4b5c6d</id>",
            "<title type=\"text\">Droits &lt;des&gt; patients &amp; accès</title>",
            "<published>2026-03-01T08:00:00Z</published>",
            "<updated>2026-03-01T09:00:00Z</updated>",
            "<author>\n      <name>Équipe O&apos;Neil</name>\n    </author>",
            "<category term=\"droits-des-patients\" label=\"Droits des patients\"/>",
            "<content type=\"html\">&lt;p&gt;Un &lt;a href=&quot;https://x.test/?a=1&amp;amp;b=2&quot;&gt;lien&lt;/a&gt;&lt;/p&gt;</content>",
        ] {
            assert!(xml.contains(expected), "{expected}\n{xml}");
        }
        assert!(!xml.contains('\u{1}'), "a control character is not XML");
        assert!(xml.ends_with("</feed>\n"));
        // Balanced: every entry closed.
        assert_eq!(
            xml.matches("<entry>").count(),
            xml.matches("</entry>").count()
        );
    }

    #[test]
    fn escaping_and_dates() {
        assert_eq!(
            escape("a<b>&\"'\u{0}\u{FFFF}\t"),
            "a&lt;b&gt;&amp;&quot;&apos;\t"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
