//! The article and its lifecycle.
//!
//! ```text
//!            schedule(at)                 at ≤ now (no job: a query condition)
//!   draft ─────────────────► scheduled ─────────────────────────► published
//!     │  ◄──── to draft ─────────┘ │                                  │  ▲
//!     │                            └──────── withdraw ──────────┐     │  │
//!     └───────────────────── publish ──────────────────────────►│─────┘  │
//!                                                    withdrawn ◄┘ withdraw│
//!                                  (to draft, or publish again) ──────────┘
//! ```
//!
//! A scheduled article whose date has come *is* published: [`Article::effective_status`] and
//! the store's queries compare the date with the clock, so nothing has to run at that moment.
//! Authors are accounts with the role [`EDITOR_ROLE`] or administrators; anyone signed in reads
//! the professionals' articles; anonymous readers see published public articles only.

use crate::{PublicationError, Result, slug};

/// The role that lets an account write and publish articles (administrators may too).
pub const EDITOR_ROLE: &str = "editor";

/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest Markdown body, in bytes.
pub const MAX_BODY: usize = 200_000;
/// Most tags on one article, and the longest tag.
pub const MAX_TAGS: usize = 12;
pub const MAX_TAG: usize = 40;

/// Who an article is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Anyone, without signing in; also in the Atom feed.
    Public,
    /// Signed-in users only; never in the feed.
    Professionals,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Public => "public",
            Audience::Professionals => "professionals",
        }
    }

    pub fn parse(s: &str) -> Option<Audience> {
        match s {
            "public" => Some(Audience::Public),
            "professionals" => Some(Audience::Professionals),
            _ => None,
        }
    }
}

/// The stored status; see [`Article::effective_status`] for what readers get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Draft,
    /// To be published at `publish_at`.
    Scheduled,
    Published,
    Withdrawn,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Scheduled => "scheduled",
            Status::Published => "published",
            Status::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "draft" => Some(Status::Draft),
            "scheduled" => Some(Status::Scheduled),
            "published" => Some(Status::Published),
            "withdrawn" => Some(Status::Withdrawn),
            _ => None,
        }
    }
}

/// A tag: the words as the editor typed them, and the key that filters (`?tag=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub label: String,
}

impl Tag {
    pub fn new(label: &str) -> Tag {
        let label = label.split_whitespace().collect::<Vec<_>>().join(" ");
        Tag {
            key: slug::slugify(&label),
            label,
        }
    }
}

/// An article as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    /// A random UUID (also the Atom entry id, `urn:uuid:…`).
    pub id: String,
    pub slug: String,
    pub title: String,
    /// Markdown source; rendered and sanitised when shown ([`crate::markdown::render`]).
    pub body: String,
    /// Plain-text opening of the body, for lists and the feed.
    pub summary: String,
    pub audience: Audience,
    pub status: Status,
    /// The scheduled date (scheduled) or the date it went out (published, withdrawn); µs.
    pub publish_at_us: Option<i64>,
    pub withdrawn_at_us: Option<i64>,
    pub author_id: String,
    pub author_name: String,
    pub tags: Vec<Tag>,
    pub created_at_us: i64,
    pub updated_at_us: i64,
    /// Incremented by every change: a form saved over a newer version is refused.
    pub version: i64,
}

impl Article {
    /// The status readers get at `now`: a scheduled article whose date has come is published.
    pub fn effective_status(&self, now_us: i64) -> Status {
        match (self.status, self.publish_at_us) {
            (Status::Scheduled, Some(at)) if at <= now_us => Status::Published,
            (s, _) => s,
        }
    }

    pub fn is_live(&self, now_us: i64) -> bool {
        self.effective_status(now_us) == Status::Published
    }

    /// The Atom entry's `updated`: the last change, or the publication if it came later (an
    /// article edited before its scheduled date).
    pub fn last_change_us(&self) -> i64 {
        self.updated_at_us
            .max(self.publish_at_us.unwrap_or(i64::MIN))
    }
}

/// Who reads: decided by the server from the session, used by every visibility rule here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    pub signed_in: bool,
    pub editor: bool,
}

impl Viewer {
    pub const ANONYMOUS: Viewer = Viewer {
        signed_in: false,
        editor: false,
    };

    /// A viewer from a principal's facts: signed in at all, and its roles.
    pub fn new(signed_in: bool, roles: &[String]) -> Viewer {
        let editor = signed_in && roles.iter().any(|r| r == EDITOR_ROLE || r == "admin");
        Viewer { signed_in, editor }
    }

    /// The audiences this viewer may read.
    pub fn audiences(self) -> &'static [Audience] {
        if self.signed_in {
            &[Audience::Public, Audience::Professionals]
        } else {
            &[Audience::Public]
        }
    }

    pub fn may_read(self, audience: Audience) -> bool {
        self.audiences().contains(&audience)
    }

    /// Authors write, schedule, publish and withdraw.
    pub fn may_author(self) -> bool {
        self.editor
    }
}

/// What a reader's request for one article should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Visible,
    /// It was published and then withdrawn (HTTP 410 for those who could read it).
    Gone,
    /// Never shown to this viewer, or not yet (HTTP 404: its existence is not told).
    Hidden,
}

/// Whether `viewer` may read `article` on the reading pages at `now`. Editors see drafts on the
/// authoring pages only, so they get the same answer as any other signed-in reader here.
pub fn visibility(article: &Article, viewer: Viewer, now_us: i64) -> Visibility {
    if !viewer.may_read(article.audience) {
        return Visibility::Hidden;
    }
    match article.effective_status(now_us) {
        Status::Published => Visibility::Visible,
        Status::Withdrawn => Visibility::Gone,
        Status::Draft | Status::Scheduled => Visibility::Hidden,
    }
}

/// A lifecycle step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Publish at a future date (µs).
    Schedule { at_us: i64 },
    /// Publish now.
    Publish,
    /// Take a published (or scheduled) article off the site.
    Withdraw,
    /// Back to draft: cancel a schedule, or rework a withdrawn article.
    ToDraft,
}

impl Action {
    /// The audit action name (`publication.publish`…).
    pub fn audit_name(self) -> &'static str {
        match self {
            Action::Schedule { .. } => "publication.schedule",
            Action::Publish => "publication.publish",
            Action::Withdraw => "publication.withdraw",
            Action::ToDraft => "publication.draft",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Action::Schedule { .. } => "schedule",
            Action::Publish => "publish",
            Action::Withdraw => "withdraw",
            Action::ToDraft => "return to draft",
        }
    }
}

/// The status fields after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub status: Status,
    pub publish_at_us: Option<i64>,
    pub withdrawn_at_us: Option<i64>,
}

/// The one place the lifecycle is decided: what `action` does to `article` at `now`, or why
/// it may not. A scheduled article whose date has passed is treated as published.
pub fn transition(article: &Article, action: Action, now_us: i64) -> Result<Transition> {
    let current = article.effective_status(now_us);
    let refuse = || PublicationError::Transition {
        action: action.verb(),
        status: current.as_str(),
    };
    match (action, current) {
        (Action::Schedule { at_us }, Status::Draft | Status::Scheduled | Status::Withdrawn) => {
            if at_us <= now_us {
                return Err(PublicationError::Invalid(
                    "the scheduled date must be in the future (publish now instead)".into(),
                ));
            }
            Ok(Transition {
                status: Status::Scheduled,
                publish_at_us: Some(at_us),
                withdrawn_at_us: None,
            })
        }
        (Action::Publish, Status::Draft | Status::Scheduled | Status::Withdrawn) => {
            Ok(Transition {
                status: Status::Published,
                publish_at_us: Some(now_us),
                withdrawn_at_us: None,
            })
        }
        (Action::Withdraw, Status::Published | Status::Scheduled) => Ok(Transition {
            status: Status::Withdrawn,
            // A schedule that never went out leaves no publication date.
            publish_at_us: (current == Status::Published)
                .then_some(article.publish_at_us)
                .flatten(),
            withdrawn_at_us: Some(now_us),
        }),
        (Action::ToDraft, Status::Scheduled | Status::Withdrawn) => Ok(Transition {
            status: Status::Draft,
            publish_at_us: None,
            withdrawn_at_us: None,
        }),
        _ => Err(refuse()),
    }
}

/// What an editor submits: the editable fields of an article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleInput {
    pub title: String,
    pub body: String,
    pub audience: Audience,
    pub tags: Vec<Tag>,
}

impl ArticleInput {
    /// Checks and tidies the form's values: a title of 1 to [`MAX_TITLE`] characters on one
    /// line, a body of at most [`MAX_BODY`] bytes, tags separated by commas (at most
    /// [`MAX_TAGS`], each of 1 to [`MAX_TAG`] characters, duplicates merged).
    pub fn parse(title: &str, body: &str, audience: &str, tags: &str) -> Result<ArticleInput> {
        let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
        if title.is_empty() {
            return Err(PublicationError::Invalid("the title is empty".into()));
        }
        if title.chars().count() > MAX_TITLE {
            return Err(PublicationError::Invalid(format!(
                "the title is longer than {MAX_TITLE} characters"
            )));
        }
        if body.len() > MAX_BODY {
            return Err(PublicationError::Invalid(format!(
                "the text is longer than {MAX_BODY} bytes"
            )));
        }
        let audience = Audience::parse(audience).ok_or_else(|| {
            PublicationError::Invalid("the audience is public or professionals".into())
        })?;
        let mut parsed: Vec<Tag> = Vec::new();
        for raw in tags.split(',').filter(|t| !t.trim().is_empty()) {
            let tag = Tag::new(raw);
            if tag.label.chars().count() > MAX_TAG {
                return Err(PublicationError::Invalid(format!(
                    "the tag {:?} is longer than {MAX_TAG} characters",
                    tag.label
                )));
            }
            if !tag.label.chars().any(char::is_alphanumeric) {
                return Err(PublicationError::Invalid(format!(
                    "the tag {:?} has no letter or digit",
                    tag.label
                )));
            }
            if !parsed.iter().any(|t| t.key == tag.key) {
                parsed.push(tag);
            }
        }
        if parsed.len() > MAX_TAGS {
            return Err(PublicationError::Invalid(format!(
                "at most {MAX_TAGS} tags"
            )));
        }
        Ok(ArticleInput {
            title,
            // Browsers send CRLF line ends; Markdown does not care, diffs and storage do.
            body: body.replace("\r\n", "\n"),
            audience,
            tags: parsed,
        })
    }

    /// The tags as the form shows them back.
    pub fn tags_text(tags: &[Tag]) -> String {
        tags.iter()
            .map(|t| t.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000_000_000;
    const HOUR: i64 = 3_600_000_000;

    fn article(status: Status, publish_at_us: Option<i64>, audience: Audience) -> Article {
        Article {
            id: "0".into(),
            slug: "a".into(),
            title: "A".into(),
            body: String::new(),
            summary: String::new(),
            audience,
            status,
            publish_at_us,
            withdrawn_at_us: None,
            author_id: "e".into(),
            author_name: "E".into(),
            tags: vec![],
            created_at_us: NOW - 10 * HOUR,
            updated_at_us: NOW - 10 * HOUR,
            version: 1,
        }
    }

    #[test]
    fn scheduled_articles_are_published_once_their_date_has_come() {
        let a = article(Status::Scheduled, Some(NOW), Audience::Public);
        assert_eq!(a.effective_status(NOW - 1), Status::Scheduled);
        assert_eq!(a.effective_status(NOW), Status::Published);
        assert_eq!(a.effective_status(NOW + HOUR), Status::Published);
        assert_eq!(
            a.last_change_us(),
            NOW,
            "publication later than the last edit"
        );
        let draft = article(Status::Draft, None, Audience::Public);
        assert_eq!(draft.effective_status(NOW), Status::Draft);
    }

    #[test]
    fn who_sees_what() {
        let anonymous = Viewer::ANONYMOUS;
        let member = Viewer::new(true, &["clinician".into()]);
        let editor = Viewer::new(true, &["editor".into()]);
        assert!(!member.may_author() && editor.may_author());
        assert!(Viewer::new(true, &["admin".into()]).may_author());
        assert!(
            !Viewer::new(false, &["editor".into()]).may_author(),
            "signed in first"
        );
        use Visibility::*;
        // (status, publish_at, audience, anonymous, signed in)
        let table = [
            (
                Status::Published,
                Some(NOW - HOUR),
                Audience::Public,
                Visible,
                Visible,
            ),
            (
                Status::Published,
                Some(NOW - HOUR),
                Audience::Professionals,
                Hidden,
                Visible,
            ),
            (
                Status::Scheduled,
                Some(NOW + HOUR),
                Audience::Public,
                Hidden,
                Hidden,
            ),
            (
                Status::Scheduled,
                Some(NOW - 1),
                Audience::Public,
                Visible,
                Visible,
            ),
            (
                Status::Scheduled,
                Some(NOW - 1),
                Audience::Professionals,
                Hidden,
                Visible,
            ),
            (Status::Draft, None, Audience::Public, Hidden, Hidden),
            (
                Status::Withdrawn,
                Some(NOW - HOUR),
                Audience::Public,
                Gone,
                Gone,
            ),
            // A withdrawn professionals' article is not even said to exist to the public.
            (
                Status::Withdrawn,
                Some(NOW - HOUR),
                Audience::Professionals,
                Hidden,
                Gone,
            ),
        ];
        for (status, at, audience, anon, signed) in table {
            let a = article(status, at, audience);
            assert_eq!(
                visibility(&a, anonymous, NOW),
                anon,
                "{status:?} {audience:?}"
            );
            assert_eq!(
                visibility(&a, member, NOW),
                signed,
                "{status:?} {audience:?}"
            );
            assert_eq!(
                visibility(&a, editor, NOW),
                signed,
                "editors read like members"
            );
        }
    }

    #[test]
    fn lifecycle_steps() {
        use Status::*;
        let later = NOW + HOUR;
        let ok = |from: Status, at: Option<i64>, action: Action| {
            transition(&article(from, at, Audience::Public), action, NOW)
        };
        let t = ok(Draft, None, Action::Schedule { at_us: later }).unwrap();
        assert_eq!((t.status, t.publish_at_us), (Scheduled, Some(later)));
        let t = ok(
            Scheduled,
            Some(later),
            Action::Schedule {
                at_us: later + HOUR,
            },
        )
        .unwrap();
        assert_eq!(t.publish_at_us, Some(later + HOUR), "rescheduled");
        let t = ok(Draft, None, Action::Publish).unwrap();
        assert_eq!((t.status, t.publish_at_us), (Published, Some(NOW)));
        let t = ok(Scheduled, Some(later), Action::Publish).unwrap();
        assert_eq!(t.publish_at_us, Some(NOW), "published ahead of schedule");
        let t = ok(Published, Some(NOW - HOUR), Action::Withdraw).unwrap();
        assert_eq!(
            (t.status, t.publish_at_us, t.withdrawn_at_us),
            (Withdrawn, Some(NOW - HOUR), Some(NOW))
        );
        let t = ok(Scheduled, Some(later), Action::Withdraw).unwrap();
        assert_eq!(
            (t.status, t.publish_at_us),
            (Withdrawn, None),
            "never went out"
        );
        let t = ok(Scheduled, Some(NOW - 1), Action::Withdraw).unwrap();
        assert_eq!(t.publish_at_us, Some(NOW - 1), "went out at its date");
        assert_eq!(
            ok(Withdrawn, Some(NOW - HOUR), Action::ToDraft)
                .unwrap()
                .status,
            Draft
        );
        assert_eq!(
            ok(Withdrawn, Some(NOW - HOUR), Action::Publish)
                .unwrap()
                .status,
            Published
        );
        assert_eq!(
            ok(Scheduled, Some(later), Action::ToDraft).unwrap().status,
            Draft
        );

        for (from, at, action) in [
            (Published, Some(NOW - HOUR), Action::Publish),
            (Published, Some(NOW - HOUR), Action::ToDraft),
            (
                Published,
                Some(NOW - HOUR),
                Action::Schedule { at_us: later },
            ),
            // Due: it is published now, so it cannot be scheduled or sent back to draft.
            (Scheduled, Some(NOW - 1), Action::ToDraft),
            (Scheduled, Some(NOW - 1), Action::Publish),
            (Draft, None, Action::Withdraw),
            (Draft, None, Action::ToDraft),
            (Withdrawn, Some(NOW - HOUR), Action::Withdraw),
        ] {
            let e = ok(from, at, action).unwrap_err();
            assert!(
                matches!(e, PublicationError::Transition { .. }),
                "{from:?} {action:?}"
            );
            assert!(e.is_bad_input());
        }
        let past = ok(Draft, None, Action::Schedule { at_us: NOW }).unwrap_err();
        assert!(matches!(past, PublicationError::Invalid(_)));
        assert_eq!(Action::Publish.audit_name(), "publication.publish");
    }

    #[test]
    fn input_is_checked_and_tidied() {
        let i = ArticleInput::parse(
            "  Droits   des patients ",
            "# Titre\r\nTexte",
            "public",
            "Droits des patients, droits des patients , Hôpital,, ",
        )
        .unwrap();
        assert_eq!(i.title, "Droits des patients");
        assert_eq!(i.body, "# Titre\nTexte");
        assert_eq!(i.audience, Audience::Public);
        assert_eq!(
            i.tags,
            [
                Tag {
                    key: "droits-des-patients".into(),
                    label: "Droits des patients".into()
                },
                Tag {
                    key: "hopital".into(),
                    label: "Hôpital".into()
                },
            ]
        );
        assert_eq!(
            ArticleInput::tags_text(&i.tags),
            "Droits des patients, Hôpital"
        );
        for (title, body, audience, tags) in [
            ("", "x", "public", ""),
            ("   ", "x", "public", ""),
            (&"t".repeat(MAX_TITLE + 1), "x", "public", ""),
            ("T", &"x".repeat(MAX_BODY + 1), "public", ""),
            ("T", "x", "everyone", ""),
            ("T", "x", "public", &"t".repeat(MAX_TAG + 1)),
            ("T", "x", "public", "!!!"),
            (
                "T",
                "x",
                "public",
                &(0..=MAX_TAGS)
                    .map(|i| format!("t{i}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ] {
            let e = ArticleInput::parse(title, body, audience, tags).unwrap_err();
            assert!(
                matches!(e, PublicationError::Invalid(_)),
                "{title} {audience} {tags}"
            );
        }
    }
}
