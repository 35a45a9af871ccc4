//! Publications ("services de publication"): information, articles and advice for the public
//! and for health professionals.
//!
//! The domain is plain Rust without I/O — the article model and its lifecycle ([`article`]),
//! who may see and write what, slugs from French titles ([`slug`]), accent- and case-folded
//! search words ([`fold`]), safe Markdown ([`markdown`]), the Atom feed ([`atom`]) and the
//! Europe/Paris wall clock of scheduling forms ([`paris`]). The only I/O is [`store`], the
//! articles on SQLite or PostgreSQL. Audit records and pages belong to the server.

pub mod article;
pub mod atom;
pub mod fold;
pub mod markdown;
pub mod paris;
pub mod slug;
pub mod store;

pub use article::{
    Action, Article, ArticleInput, Audience, EDITOR_ROLE, Status, Tag, Viewer, Visibility,
};
pub use store::{ArticlePage, ListQuery, Publications};

/// The one error type of publications.
#[derive(Debug, thiserror::Error)]
pub enum PublicationError {
    /// The editor's input breaks a rule (empty title, too many tags…): shown back on the form.
    #[error("{0}")]
    Invalid(String),
    /// A lifecycle step that the article's current status does not allow.
    #[error("cannot {action} an article that is {status}")]
    Transition {
        action: &'static str,
        status: &'static str,
    },
    #[error("no such article: {0}")]
    NotFound(String),
    /// Someone else saved the article since the form was loaded.
    #[error("the article was changed meanwhile (now at version {0}); reload it")]
    Conflict(i64),
    /// A stored value the code does not know (a status or audience written by hand).
    #[error("corrupt article row: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

impl PublicationError {
    /// The caller's fault (answer 4xx), as opposed to the platform's (5xx).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            PublicationError::Invalid(_)
                | PublicationError::Transition { .. }
                | PublicationError::Conflict(_)
        )
    }
}

pub type Result<T, E = PublicationError> = std::result::Result<T, E>;
