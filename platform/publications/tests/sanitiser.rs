//! Property test of the Markdown renderer: whatever an editor (or an attacker with an editor's
//! account) types, the HTML that comes out has no script element, no event-handler attribute
//! and no `javascript:` (or other script-capable) URL.
//!
//! The check reads the output as HTML: the sanitiser serialises text with `<` escaped, so every
//! `<` starts a tag, whose attributes are parsed here (values entity-decoded, as a browser
//! would) and inspected.

use megalis_publications::markdown::render;
use proptest::prelude::*;

/// Decodes the character references a browser would in an attribute value.
fn decode(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').unwrap_or(rest.len());
        let entity = &rest[1..end];
        let decoded = if let Some(hex) = entity.strip_prefix("#x").or(entity.strip_prefix("#X")) {
            u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
        } else if let Some(dec) = entity.strip_prefix('#') {
            dec.parse().ok().and_then(char::from_u32)
        } else {
            match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "colon" => Some(':'),
                "Tab" => Some('\t'),
                "NewLine" => Some('\n'),
                _ => None,
            }
        };
        match decoded {
            Some(c) if end < rest.len() => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Tags of serialised HTML: (name, [(attribute, decoded value)]).
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>').expect("every tag is closed");
        let inner = after[..end].trim_end_matches('/');
        rest = &after[end + 1..];
        if inner.starts_with('/') || inner.starts_with('!') {
            continue;
        }
        let name_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
        let name = inner[..name_end].to_ascii_lowercase();
        let mut attrs = Vec::new();
        let mut a = inner[name_end..].trim_start();
        while !a.is_empty() {
            let key_end = a
                .find(|c: char| c == '=' || c.is_whitespace())
                .unwrap_or(a.len());
            let key = a[..key_end].to_ascii_lowercase();
            a = a[key_end..].trim_start();
            let mut value = String::new();
            if let Some(v) = a.strip_prefix('=') {
                let v = v.trim_start();
                let (quoted, tail) = match v.chars().next() {
                    Some(q @ ('"' | '\'')) => {
                        let close = v[1..].find(q).expect("closing quote") + 1;
                        (&v[1..close], &v[close + 1..])
                    }
                    _ => {
                        let e = v.find(char::is_whitespace).unwrap_or(v.len());
                        (&v[..e], &v[e..])
                    }
                };
                value = decode(quoted);
                a = tail.trim_start();
            }
            attrs.push((key, value));
        }
        found.push((name, attrs));
    }
    found
}

/// The URL's scheme as a browser resolves it: controls and whitespace removed, lower case.
fn scheme(url: &str) -> Option<String> {
    let cleaned: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    let colon = cleaned.find(':')?;
    let s = &cleaned[..colon];
    (!s.contains('/') && !s.contains('?') && !s.contains('#')).then(|| s.to_string())
}

fn assert_inert(input: &str) {
    let html = render(input);
    let lower = html.to_ascii_lowercase();
    assert!(
        !lower.contains("<script"),
        "script element from {input:?}: {html}"
    );
    for (name, attrs) in tags(&html) {
        for forbidden in [
            "script", "iframe", "object", "embed", "style", "form", "svg", "math", "base", "meta",
            "link",
        ] {
            assert_ne!(name, forbidden, "<{name}> from {input:?}: {html}");
        }
        for (key, value) in attrs {
            assert!(!key.starts_with("on"), "{key}= from {input:?}: {html}");
            assert_ne!(key, "style", "style= from {input:?}: {html}");
            let is_url = matches!(
                key.as_str(),
                "href" | "src" | "cite" | "action" | "formaction"
            );
            if is_url && let Some(s) = scheme(&value) {
                assert!(
                    matches!(s.as_str(), "http" | "https" | "mailto"),
                    "{key}={value:?} from {input:?}: {html}"
                );
            }
            if name == "a" && key == "rel" {
                assert_eq!(value, "noopener noreferrer");
            }
        }
    }
}

/// Pieces an attacker would combine: tags, handlers, schemes, entities, Markdown syntax.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<script>alert(1)</script>".to_string()),
        Just("<scr<script>ipt>".to_string()),
        Just("<img src=x onerror=alert(1)>".to_string()),
        Just("<IMG SRC=\"jav&#x09;ascript:alert(1)\">".to_string()),
        Just("<a href=\"javascript:alert(1)\">".to_string()),
        Just("<svg/onload=alert(1)>".to_string()),
        Just("<iframe srcdoc=\"<script>\">".to_string()),
        Just("<div style=\"x:expression(alert(1))\">".to_string()),
        Just("<body onload=alert(1)>".to_string()),
        Just("[x](javascript:alert(1))".to_string()),
        Just("[x](JAVASCRIPT:alert(1) \"t\")".to_string()),
        Just("[x]( java\tscript:alert(1))".to_string()),
        Just("![i](javascript:alert(1))".to_string()),
        Just("[r]: javascript:alert(1)\n\n[r]".to_string()),
        Just("<javascript:alert(1)>".to_string()),
        Just("[x](data:text/html,<script>alert(1)</script>)".to_string()),
        Just("&lt;script&gt;".to_string()),
        Just("`<script>`".to_string()),
        Just("```\n<script>\n```".to_string()),
        Just(" onmouseover=alert(1) ".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("<".to_string()),
        Just(">".to_string()),
        Just("\n\n".to_string()),
        Just("# ".to_string()),
        Just("> ".to_string()),
        Just("- ".to_string()),
        Just("| a | b |\n|---|---|\n".to_string()),
        "[a-zA-Z0-9 :;=/\"'<>&#()\\[\\]!`*_.\\n-]{0,24}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn rendered_markdown_is_always_inert(parts in prop::collection::vec(fragment(), 0..12)) {
        assert_inert(&parts.concat());
    }

    #[test]
    fn arbitrary_text_is_inert(input in any::<String>()) {
        assert_inert(&input);
    }
}

#[test]
fn the_checker_catches_what_it_looks_for() {
    // The parser of this test sees through quoting and entities.
    let t = tags("<a href=\"java&#x73;cript&colon;x\" onclick='y'>t</a><img src=x>");
    assert_eq!(t[0].0, "a");
    assert_eq!(t[0].1[0], ("href".into(), "javascript:x".into()));
    assert_eq!(t[0].1[1], ("onclick".into(), "y".into()));
    assert_eq!(t[1].1[0], ("src".into(), "x".into()));
    assert_eq!(scheme(" Java\tScript:x").as_deref(), Some("javascript"));
    assert_eq!(scheme("/relative:path"), None);
}
