//! Articles on the database (SQLite or PostgreSQL, the same SQL): the one I/O part of the crate.
//!
//! Every read that serves readers takes the clock as an argument and selects what is live at
//! that instant (`status = 'published'`, or `'scheduled'` with `publish_at_us <= now`), so a
//! scheduled article appears at its date with nothing running. Writes check the version the
//! editor's form was loaded with, so that two editors cannot overwrite each other silently.

use std::collections::BTreeSet;

use megalis_store::{Database, with_pool};
use sqlx::AssertSqlSafe;

use crate::article::{self, Action, Article, ArticleInput, Audience, Status, Tag, Viewer};
use crate::{PublicationError, Result, fold, markdown, slug};

/// Length of the plain-text summary kept with each article.
pub const SUMMARY_CHARS: usize = 280;
/// Most words of a search query used (the rest is ignored).
pub const MAX_QUERY_WORDS: usize = 8;

const COLUMNS: &str = "p.id, p.slug, p.title, p.body, p.summary, p.audience, p.status, \
                       p.publish_at_us, p.withdrawn_at_us, p.author_id, p.author_name, \
                       p.created_at_us, p.updated_at_us, p.version";

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    String,
    String,
    i64,
    i64,
    i64,
);

fn from_row(row: Row) -> Result<Article> {
    let (
        id,
        slug,
        title,
        body,
        summary,
        audience,
        status,
        publish_at_us,
        withdrawn_at_us,
        author_id,
        author_name,
        created_at_us,
        updated_at_us,
        version,
    ) = row;
    Ok(Article {
        audience: Audience::parse(&audience)
            .ok_or_else(|| PublicationError::Corrupt(format!("{id}: audience {audience:?}")))?,
        status: Status::parse(&status)
            .ok_or_else(|| PublicationError::Corrupt(format!("{id}: status {status:?}")))?,
        id,
        slug,
        title,
        body,
        summary,
        publish_at_us,
        withdrawn_at_us,
        author_id,
        author_name,
        tags: Vec::new(),
        created_at_us,
        updated_at_us,
        version,
    })
}

/// A bound value of a query built from parts.
#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
}

macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

/// A query's conditions and their arguments, numbered `$1…` in order.
#[derive(Default)]
struct Sql {
    conditions: Vec<String>,
    args: Vec<Arg>,
}

impl Sql {
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    fn filter(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }
}

/// What a reading list asks for.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub viewer: Viewer,
    /// Only these audiences (within what the viewer may read); empty: all the viewer may read.
    pub audiences: Vec<Audience>,
    pub now_us: i64,
    /// Words to find (title, text, tags), accent- and case-insensitive, each as a word prefix.
    pub text: String,
    /// A tag key.
    pub tag: Option<String>,
    pub offset: usize,
    pub limit: usize,
}

/// One page of a list, with the total count.
#[derive(Debug, Clone)]
pub struct ArticlePage {
    pub total: usize,
    pub articles: Vec<Article>,
}

/// The articles' database handle.
#[derive(Clone)]
pub struct Publications {
    db: Database,
}

/// A random (version 4) UUID.
fn new_id() -> String {
    use rand::Rng;
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The search terms of an article: distinct folded words of its title, text and tags.
pub fn terms(title: &str, body: &str, tags: &[Tag]) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = fold::words(title).into_iter().collect();
    all.extend(fold::words(&markdown::plain_text(body)));
    for t in tags {
        all.extend(fold::words(&t.label));
    }
    all
}

/// The words of a query, as searched (at most [`MAX_QUERY_WORDS`], duplicates removed).
pub fn query_words(text: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    fold::words(text)
        .into_iter()
        .filter(|w| seen.insert(w.clone()))
        .take(MAX_QUERY_WORDS)
        .collect()
}

/// Writes an article's tags and search terms anew, inside the caller's transaction.
macro_rules! write_index {
    ($tx:expr, $id:expr, $input:expr) => {{
        sqlx::query("DELETE FROM publication_tag WHERE publication_id = $1")
            .bind($id)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("DELETE FROM publication_term WHERE publication_id = $1")
            .bind($id)
            .execute(&mut *$tx)
            .await?;
        for (i, t) in $input.tags.iter().enumerate() {
            sqlx::query(
                "INSERT INTO publication_tag (publication_id, tag, label, position) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind($id)
            .bind(&t.key)
            .bind(&t.label)
            .bind(i as i64)
            .execute(&mut *$tx)
            .await?;
        }
        let all: Vec<String> = terms(&$input.title, &$input.body, &$input.tags)
            .into_iter()
            .collect();
        for chunk in all.chunks(400) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, $1)", i + 2))
                .collect();
            let sql = format!(
                "INSERT INTO publication_term (term, publication_id) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind($id);
            for term in chunk {
                q = q.bind(term);
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl Publications {
    pub fn new(db: Database) -> Publications {
        Publications { db }
    }

    /// Creates a draft; its slug comes from the title (`-2`, `-3`… when taken).
    pub async fn create(
        &self,
        input: &ArticleInput,
        author_id: &str,
        author_name: &str,
        now_us: i64,
    ) -> Result<Article> {
        let base = slug::slugify(&input.title);
        let summary = markdown::summary(&input.body, SUMMARY_CHARS);
        // A concurrent creation may take the slug chosen; try again with the next free one.
        for _ in 0..5 {
            let id = new_id();
            let taken: Vec<String> = with_pool!(&self.db, pool =>
                sqlx::query_scalar(
                    "SELECT slug FROM publication WHERE slug = $1 OR slug LIKE $2",
                )
                .bind(&base)
                .bind(format!("{base}-%"))
                .fetch_all(pool)
                .await)?;
            let taken: BTreeSet<String> = taken.into_iter().collect();
            let slug = (1..)
                .map(|n| slug::candidate(&base, n))
                .find(|s| !taken.contains(s))
                .expect("an unbounded range has a free candidate");
            let inserted: std::result::Result<(), sqlx::Error> = with_pool!(&self.db, pool => async {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO publication (id, slug, title, body, summary, audience, status, \
                     publish_at_us, withdrawn_at_us, author_id, author_name, created_at_us, \
                     updated_at_us, version) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'draft', NULL, NULL, $7, $8, $9, $9, 1)",
                )
                .bind(&id)
                .bind(&slug)
                .bind(&input.title)
                .bind(&input.body)
                .bind(&summary)
                .bind(input.audience.as_str())
                .bind(author_id)
                .bind(author_name)
                .bind(now_us)
                .execute(&mut *tx)
                .await?;
                write_index!(tx, &id, input);
                tx.commit().await
            }.await);
            match inserted {
                Ok(()) => {
                    return self
                        .get(&id)
                        .await?
                        .ok_or_else(|| PublicationError::NotFound(id));
                }
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PublicationError::Invalid(format!(
            "could not find a free address for {base:?}; try another title"
        )))
    }

    /// Saves an editor's changes over `expected_version`. The slug does not change: published
    /// addresses stay valid.
    pub async fn update(
        &self,
        id: &str,
        expected_version: i64,
        input: &ArticleInput,
        now_us: i64,
    ) -> Result<Article> {
        let summary = markdown::summary(&input.body, SUMMARY_CHARS);
        let changed: u64 = with_pool!(&self.db, pool => async {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE publication SET title = $1, body = $2, summary = $3, audience = $4, \
                 updated_at_us = $5, version = version + 1 WHERE id = $6 AND version = $7",
            )
            .bind(&input.title)
            .bind(&input.body)
            .bind(&summary)
            .bind(input.audience.as_str())
            .bind(now_us)
            .bind(id)
            .bind(expected_version)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                write_index!(tx, id, input);
            }
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(n)
        }.await)?;
        if changed == 0 {
            return Err(self.stale(id).await);
        }
        self.get(id)
            .await?
            .ok_or_else(|| PublicationError::NotFound(id.into()))
    }

    /// Why a versioned write changed nothing: the article is gone, or was changed meanwhile.
    async fn stale(&self, id: &str) -> PublicationError {
        match self.get(id).await {
            Ok(Some(a)) => PublicationError::Conflict(a.version),
            Ok(None) => PublicationError::NotFound(id.into()),
            Err(e) => e,
        }
    }

    /// A lifecycle step (schedule, publish, withdraw, back to draft), decided by
    /// [`article::transition`] on the article as stored at `expected_version`.
    pub async fn apply(
        &self,
        id: &str,
        expected_version: i64,
        action: Action,
        now_us: i64,
    ) -> Result<Article> {
        let current = self
            .get(id)
            .await?
            .ok_or_else(|| PublicationError::NotFound(id.into()))?;
        if current.version != expected_version {
            return Err(PublicationError::Conflict(current.version));
        }
        let t = article::transition(&current, action, now_us)?;
        let n = with_pool!(&self.db, pool =>
            sqlx::query(
                "UPDATE publication SET status = $1, publish_at_us = $2, withdrawn_at_us = $3, \
                 updated_at_us = $4, version = version + 1 WHERE id = $5 AND version = $6",
            )
            .bind(t.status.as_str())
            .bind(t.publish_at_us)
            .bind(t.withdrawn_at_us)
            .bind(now_us)
            .bind(id)
            .bind(expected_version)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if n == 0 {
            return Err(self.stale(id).await);
        }
        self.get(id)
            .await?
            .ok_or_else(|| PublicationError::NotFound(id.into()))
    }

    async fn one(&self, column: &'static str, value: &str) -> Result<Option<Article>> {
        let sql = format!("SELECT {COLUMNS} FROM publication p WHERE p.{column} = $1");
        let row: Option<Row> = with_pool!(&self.db, pool =>
            sqlx::query_as(AssertSqlSafe(sql.clone())).bind(value).fetch_optional(pool).await)?;
        let Some(row) = row else { return Ok(None) };
        let mut a = from_row(row)?;
        self.load_tags(std::slice::from_mut(&mut a)).await?;
        Ok(Some(a))
    }

    /// An article by id, whatever its status (authoring pages).
    pub async fn get(&self, id: &str) -> Result<Option<Article>> {
        self.one("id", id).await
    }

    /// An article by slug, whatever its status: the caller applies
    /// [`article::visibility`] (a withdrawn article is 410, not 404).
    pub async fn by_slug(&self, slug: &str) -> Result<Option<Article>> {
        self.one("slug", slug).await
    }

    async fn load_tags(&self, articles: &mut [Article]) -> Result<()> {
        if articles.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> = (1..=articles.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT publication_id, tag, label FROM publication_tag \
             WHERE publication_id IN ({}) ORDER BY publication_id, position",
            placeholders.join(", ")
        );
        let rows: Vec<(String, String, String)> = with_pool!(&self.db, pool => {
            let mut q = sqlx::query_as(AssertSqlSafe(sql.clone()));
            for a in articles.iter() {
                q = q.bind(a.id.clone());
            }
            q.fetch_all(pool).await
        })?;
        for (id, key, label) in rows {
            if let Some(a) = articles.iter_mut().find(|a| a.id == id) {
                a.tags.push(Tag { key, label });
            }
        }
        Ok(())
    }

    /// The live articles a viewer may read, newest first, filtered by words and tag.
    pub async fn list(&self, q: &ListQuery) -> Result<ArticlePage> {
        let audiences: Vec<Audience> = q
            .viewer
            .audiences()
            .iter()
            .copied()
            .filter(|a| q.audiences.is_empty() || q.audiences.contains(a))
            .collect();
        if audiences.is_empty() {
            return Ok(ArticlePage {
                total: 0,
                articles: vec![],
            });
        }
        let mut sql = Sql::default();
        let list: Vec<String> = audiences
            .iter()
            .map(|a| sql.arg(Arg::Text(a.as_str().into())))
            .collect();
        sql.conditions
            .push(format!("p.audience IN ({})", list.join(", ")));
        let now = sql.arg(Arg::Int(q.now_us));
        sql.conditions.push(format!(
            "(p.status = 'published' OR (p.status = 'scheduled' AND p.publish_at_us <= {now}))"
        ));
        if let Some(tag) = q.tag.as_deref().filter(|t| !t.is_empty()) {
            let t = sql.arg(Arg::Text(tag.to_string()));
            sql.conditions.push(format!(
                "p.id IN (SELECT publication_id FROM publication_tag WHERE tag = {t})"
            ));
        }
        for word in query_words(&q.text) {
            let end = fold::prefix_end(&word);
            let (lo, hi) = (sql.arg(Arg::Text(word)), sql.arg(Arg::Text(end)));
            sql.conditions.push(format!(
                "p.id IN (SELECT publication_id FROM publication_term \
                 WHERE term >= {lo} AND term < {hi})"
            ));
        }
        let filter = sql.filter();
        let count_sql = format!("SELECT COUNT(*) FROM publication p{filter}");
        let total: i64 = with_pool!(&self.db, pool =>
            bind_args!(sqlx::query_scalar(AssertSqlSafe(count_sql.clone())), &sql.args)
                .fetch_one(pool)
                .await)?;
        let total = usize::try_from(total).unwrap_or(0);
        let mut articles = Vec::new();
        if q.limit > 0 && q.offset < total {
            // Both numbers are ours (integers), not the caller's text.
            let page_sql = format!(
                "SELECT {COLUMNS} FROM publication p{filter} \
                 ORDER BY p.publish_at_us DESC, p.id LIMIT {} OFFSET {}",
                q.limit, q.offset
            );
            let rows: Vec<Row> = with_pool!(&self.db, pool =>
                bind_args!(sqlx::query_as(AssertSqlSafe(page_sql.clone())), &sql.args)
                    .fetch_all(pool)
                    .await)?;
            articles = rows.into_iter().map(from_row).collect::<Result<_>>()?;
            self.load_tags(&mut articles).await?;
        }
        Ok(ArticlePage { total, articles })
    }

    /// The tags of the live articles a viewer may read, with how many carry each, by label.
    pub async fn tags(
        &self,
        viewer: Viewer,
        audiences: &[Audience],
        now_us: i64,
    ) -> Result<Vec<(Tag, i64)>> {
        let mut sql = Sql::default();
        let list: Vec<String> = viewer
            .audiences()
            .iter()
            .filter(|a| audiences.is_empty() || audiences.contains(a))
            .map(|a| sql.arg(Arg::Text(a.as_str().into())))
            .collect();
        if list.is_empty() {
            return Ok(vec![]);
        }
        let now = sql.arg(Arg::Int(now_us));
        let query = format!(
            "SELECT t.tag, MIN(t.label), COUNT(*) FROM publication_tag t \
             JOIN publication p ON p.id = t.publication_id \
             WHERE p.audience IN ({}) AND (p.status = 'published' OR \
             (p.status = 'scheduled' AND p.publish_at_us <= {now})) \
             GROUP BY t.tag ORDER BY t.tag",
            list.join(", ")
        );
        let rows: Vec<(String, String, i64)> = with_pool!(&self.db, pool =>
            bind_args!(sqlx::query_as(AssertSqlSafe(query.clone())), &sql.args)
                .fetch_all(pool)
                .await)?;
        Ok(rows
            .into_iter()
            .map(|(key, label, n)| (Tag { key, label }, n))
            .collect())
    }

    /// The public articles live at `now`, newest first: the Atom feed. Professionals' articles
    /// are excluded by the query itself, whoever asks.
    pub async fn feed(&self, now_us: i64, limit: usize) -> Result<Vec<Article>> {
        let page = self
            .list(&ListQuery {
                viewer: Viewer::ANONYMOUS,
                audiences: vec![Audience::Public],
                now_us,
                text: String::new(),
                tag: None,
                offset: 0,
                limit,
            })
            .await?;
        Ok(page.articles)
    }

    /// Every article whatever its status, most recently changed first (authoring pages).
    pub async fn all(&self, limit: usize) -> Result<Vec<Article>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM publication p ORDER BY p.updated_at_us DESC, p.id LIMIT {limit}"
        );
        let rows: Vec<Row> = with_pool!(&self.db, pool =>
            sqlx::query_as(AssertSqlSafe(sql.clone())).fetch_all(pool).await)?;
        let mut articles: Vec<Article> = rows.into_iter().map(from_row).collect::<Result<_>>()?;
        self.load_tags(&mut articles).await?;
        Ok(articles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_uuids() {
        let a = new_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(a, new_id());
    }

    #[test]
    fn terms_come_from_title_text_and_tags() {
        let t = terms(
            "Maladie rénale chronique",
            "Le **débit** de filtration <script>alert()</script> [lien](https://x.test/secret)",
            &[Tag::new("Néphrologie")],
        );
        for w in [
            "maladie",
            "renale",
            "chronique",
            "debit",
            "filtration",
            "lien",
            "nephrologie",
        ] {
            assert!(t.contains(w), "{w}: {t:?}");
        }
        assert!(
            !t.contains("secret") && !t.contains("script"),
            "markup is not text: {t:?}"
        );
        assert_eq!(query_words("Rénale rénale RENALE le"), ["renale"]);
    }
}
