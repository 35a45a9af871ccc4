//! Finding regional patients: by identifier (regional id, INS, a source's local identifier),
//! by demographics (FHIR `Patient` search, the portal), by probable identity (`$match`, IHE
//! PDQm) and the cross-reference of identifiers (`$ihe-pix`, IHE PIXm).
//!
//! Reads take no identity lock: they see the last committed state, which is what a caller
//! asking "who is this patient" should see.

use megalis_identity::matching::normalize::{first_name_words, surname_joined};
use megalis_identity::matching::{Decision, MatchRecord, blocking_keys};
use megalis_identity::{GoldenRecord, SourceId, SourceRecord};
use megalis_store::Database;

use crate::db::IndexTx;
use crate::{IndexError, Patient, PatientIndex, Result, parse_record};

/// The search columns of a golden record (migration 0011), normalised as the matcher
/// normalises names.
pub struct SearchKeys {
    pub birth_name: String,
    pub used_name: Option<String>,
    /// Every first-name word, each preceded by a space (`" JEAN PIERRE"`): a word-prefix search
    /// is `LIKE '% JEA%'`.
    pub given: String,
    pub birth_date: String,
    pub gender: &'static str,
}

impl SearchKeys {
    pub fn of(g: &GoldenRecord) -> Self {
        let d = &g.demographics;
        let t = &d.traits;
        let mut words = first_name_words(&t.birth_first_names);
        if let Some(used) = &d.used_first_name {
            words.extend(first_name_words(std::slice::from_ref(used)));
        }
        let mut given = String::new();
        for w in words {
            given.push(' ');
            given.push_str(&w);
        }
        SearchKeys {
            birth_name: surname_joined(&t.birth_name),
            used_name: d.used_name.as_deref().map(surname_joined),
            given,
            birth_date: t.birth_date.to_string(),
            gender: fhir_gender(t.sex),
        }
    }
}

/// The FHIR `gender` code of a sex.
pub fn fhir_gender(sex: megalis_identity::Sex) -> &'static str {
    match sex {
        megalis_identity::Sex::Male => "male",
        megalis_identity::Sex::Female => "female",
        megalis_identity::Sex::Unknown => "unknown",
    }
}

/// How an identifier names a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentifierQuery {
    /// The regional identifier.
    Regional(String),
    /// An INS (NIR or NIA), whatever its identity status: a caller that holds the INS may find
    /// the patient; it is only *shown* for qualified identities.
    Ins(String),
    /// A source's local identifier (IPP) under its assigning authority.
    Source(SourceId),
    /// A value without a system: any of the above.
    Any(String),
}

/// A demographic search. Name values are matched as prefixes, after normalisation.
#[derive(Debug, Clone, Default)]
pub struct PatientQuery {
    pub identifiers: Vec<IdentifierQuery>,
    /// Prefix of the birth name or the used name.
    pub family: Option<String>,
    /// `family:exact`: the whole normalised name.
    pub family_exact: bool,
    /// Prefix of any first-name word.
    pub given: Option<String>,
    /// Birth dates in `[from, to)`, as `YYYY-MM-DD`.
    pub birth_date_from: Option<String>,
    pub birth_date_to: Option<String>,
    pub gender: Option<&'static str>,
    /// `Some(true)`: active patients only; `Some(false)`: merged ones only; `None`: active
    /// patients, unless an identifier is searched (a lookup finds a merged patient too, which
    /// then points to its survivor).
    pub active: Option<bool>,
    pub count: usize,
    pub offset: usize,
}

/// A page of search results.
#[derive(Debug, Clone)]
pub struct PatientPage {
    pub total: usize,
    pub patients: Vec<Patient>,
}

/// The grade of a `$match` candidate (IHE PDQm `match-grade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchGrade {
    /// At or above the link threshold: the index would link automatically.
    Certain,
    /// Between the thresholds: the index would put it in review.
    Probable,
    /// Below the review threshold but more likely the same person than not.
    Possible,
}

impl MatchGrade {
    pub fn code(self) -> &'static str {
        match self {
            MatchGrade::Certain => "certain",
            MatchGrade::Probable => "probable",
            MatchGrade::Possible => "possible",
        }
    }
}

/// A `$match` result.
#[derive(Debug, Clone)]
pub struct MatchCandidate {
    pub patient: Patient,
    /// Fellegi–Sunter weight in bits (log2 of the likelihood ratio).
    pub weight: f64,
    /// The weight as a probability of being the same person (prior odds 1:1), for
    /// `Bundle.entry.search.score`.
    pub score: f64,
    pub grade: MatchGrade,
}

/// Upper bound of a prefix range: `"ABC"` → `"ABD"`. Keys are upper-case ASCII letters only,
/// so incrementing the last byte is enough (`Z` becomes `[`, still above every key).
fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last += 1;
    }
    String::from_utf8(bytes).expect("ASCII key")
}

/// SQL text with `$n` placeholders and its string arguments.
#[derive(Default)]
struct Sql {
    conditions: Vec<String>,
    args: Vec<String>,
}

impl Sql {
    fn arg(&mut self, v: String) -> String {
        self.args.push(v);
        format!("${}", self.args.len())
    }

    fn identifier(&mut self, q: &IdentifierQuery) -> String {
        match q {
            IdentifierQuery::Regional(id) => format!("p.regional_id = {}", self.arg(id.clone())),
            IdentifierQuery::Ins(ins) => format!(
                "p.regional_id IN (SELECT regional_id FROM identity_source WHERE ins = {})",
                self.arg(ins.clone())
            ),
            IdentifierQuery::Source(s) => {
                let a = self.arg(s.authority.clone());
                let l = self.arg(s.local_id.clone());
                format!(
                    "p.regional_id IN (SELECT regional_id FROM identity_source \
                     WHERE authority = {a} AND local_id = {l})"
                )
            }
            IdentifierQuery::Any(v) => {
                let v = self.arg(v.clone());
                format!(
                    "(p.regional_id = {v} OR p.regional_id IN (SELECT regional_id FROM \
                     identity_source WHERE ins = {v} OR local_id = {v}))"
                )
            }
        }
    }
}

fn where_clause(q: &PatientQuery) -> Sql {
    let mut sql = Sql::default();
    for i in &q.identifiers {
        let c = sql.identifier(i);
        sql.conditions.push(c);
    }
    if let Some(family) = q.family.as_deref().map(surname_joined) {
        let c = if q.family_exact {
            let v = sql.arg(family);
            format!("(p.birth_name_key = {v} OR p.used_name_key = {v})")
        } else {
            let end = prefix_end(&family);
            let (lo, hi) = (sql.arg(family), sql.arg(end));
            format!(
                "((p.birth_name_key >= {lo} AND p.birth_name_key < {hi}) OR \
                 (p.used_name_key >= {lo} AND p.used_name_key < {hi}))"
            )
        };
        sql.conditions.push(c);
    }
    if let Some(given) = &q.given {
        for word in first_name_words(std::slice::from_ref(given)) {
            let v = sql.arg(format!("% {word}%"));
            sql.conditions.push(format!("p.given_key LIKE {v}"));
        }
    }
    if let Some(from) = &q.birth_date_from {
        let v = sql.arg(from.clone());
        sql.conditions.push(format!("p.birth_date >= {v}"));
    }
    if let Some(to) = &q.birth_date_to {
        let v = sql.arg(to.clone());
        sql.conditions.push(format!("p.birth_date < {v}"));
    }
    if let Some(g) = q.gender {
        let v = sql.arg(g.to_string());
        sql.conditions.push(format!("p.gender = {v}"));
    }
    match q.active {
        Some(true) => sql.conditions.push("p.merged_into IS NULL".into()),
        Some(false) => sql.conditions.push("p.merged_into IS NOT NULL".into()),
        None if q.identifiers.is_empty() => sql.conditions.push("p.merged_into IS NULL".into()),
        None => {}
    }
    sql
}

macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = q.bind(a.as_str());
        }
        q
    }};
}

impl PatientIndex {
    /// Patients matching every criterion, ordered by birth name then regional id.
    pub async fn search(&self, q: &PatientQuery) -> Result<PatientPage> {
        let sql = where_clause(q);
        let filter = if sql.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", sql.conditions.join(" AND "))
        };
        let count_sql = format!("SELECT COUNT(*) FROM identity_patient p{filter}");
        let total: i64 = megalis_store::with_pool!(&self.db, pool =>
            bind_all!(sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.clone())), &sql.args)
                .fetch_one(pool)
                .await?);
        let total = usize::try_from(total).unwrap_or(0);
        let mut patients = Vec::new();
        if q.count > 0 && q.offset < total {
            // Both numbers are ours (parsed integers), not caller text.
            let page_sql = format!(
                "SELECT p.regional_id FROM identity_patient p{filter} \
                 ORDER BY p.birth_name_key, p.regional_id LIMIT {} OFFSET {}",
                q.count, q.offset
            );
            let ids: Vec<String> = megalis_store::with_pool!(&self.db, pool =>
                bind_all!(sqlx::query_scalar(sqlx::AssertSqlSafe(page_sql.clone())), &sql.args)
                    .fetch_all(pool)
                    .await?);
            for id in ids {
                if let Some(p) = self.patient(&id).await? {
                    patients.push(p);
                }
            }
        }
        Ok(PatientPage { total, patients })
    }

    /// The patient an identifier names, following merges to the surviving patient; `None` when
    /// no patient carries it. Several patients for one identifier (an INS shared by two
    /// patients waiting for review) is an error: the caller must not pick one.
    pub async fn resolve(&self, identifier: &IdentifierQuery) -> Result<Option<Patient>> {
        let page = self
            .search(&PatientQuery {
                identifiers: vec![identifier.clone()],
                count: 2,
                ..Default::default()
            })
            .await?;
        let Some(first) = page.patients.into_iter().next() else {
            return Ok(None);
        };
        if page.total > 1 {
            return Err(IndexError::Ambiguous(format!("{identifier:?}")));
        }
        let mut current = first;
        for _ in 0..64 {
            match current.merged_into.clone() {
                None => return Ok(Some(current)),
                Some(next) => {
                    current = self
                        .patient(&next)
                        .await?
                        .ok_or_else(|| IndexError::Corrupt(format!("missing patient {next}")))?
                }
            }
        }
        Err(IndexError::Corrupt("merge chain too long".into()))
    }

    /// Probable matches of an identity (IHE PDQm `$match`): the same blocking and weights as
    /// the feed, without storing anything. Best first, at most `count`.
    pub async fn find_matches(
        &self,
        probe: &SourceRecord,
        count: usize,
        only_certain: bool,
    ) -> Result<Vec<MatchCandidate>> {
        let today = time::OffsetDateTime::now_utc().date();
        probe.demographics.traits.validate(today)?;
        let features = MatchRecord::from_source(probe);
        let keys = blocking_keys(&features);
        let candidates = match &self.db {
            Database::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let c = tx.candidates(&keys).await?;
                tx.rollback().await?;
                c
            }
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let c = tx.candidates(&keys).await?;
                tx.rollback().await?;
                c
            }
        };
        let mut best: std::collections::BTreeMap<String, (Decision, f64)> = Default::default();
        for c in candidates {
            let other = parse_record(&c.record)?;
            let (decision, weight, _) = self
                .settings
                .matching
                .decide(&features, &MatchRecord::from_source(&other));
            let entry = best
                .entry(c.regional_id)
                .or_insert((Decision::Distinct, f64::NEG_INFINITY));
            if weight > entry.1 {
                *entry = (decision, weight);
            }
        }
        let mut ranked: Vec<(String, MatchGrade, f64)> = best
            .into_iter()
            .filter_map(|(id, (decision, weight))| {
                let grade = match decision {
                    Decision::Link => MatchGrade::Certain,
                    Decision::Review => MatchGrade::Probable,
                    Decision::Distinct if weight > 0.0 => MatchGrade::Possible,
                    Decision::Distinct => return None,
                };
                (!only_certain || grade == MatchGrade::Certain).then_some((id, grade, weight))
            })
            .collect();
        ranked.sort_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)));
        ranked.truncate(count);
        let mut out = Vec::with_capacity(ranked.len());
        for (id, grade, weight) in ranked {
            if let Some(patient) = self.patient(&id).await? {
                out.push(MatchCandidate {
                    patient,
                    weight,
                    score: 1.0 / (1.0 + (-weight).exp2()),
                    grade,
                });
            }
        }
        Ok(out)
    }

    /// Whether an assigning authority has fed at least one source record (IHE PIXm: a known
    /// patient identifier domain).
    pub async fn knows_authority(&self, oid: &str) -> Result<bool> {
        let found: Option<String> = megalis_store::with_pool!(&self.db, pool =>
            sqlx::query_scalar("SELECT authority FROM identity_source WHERE authority = $1 LIMIT 1")
                .bind(oid)
                .fetch_optional(pool)
                .await?);
        Ok(found.is_some())
    }

    /// Computes the search columns of patients stored before migration 0011; run once at
    /// start, cheap when there is nothing to do.
    pub async fn backfill_search_keys(&self) -> Result<u64> {
        let mut done = 0;
        loop {
            let ids: Vec<String> = megalis_store::with_pool!(&self.db, pool =>
                sqlx::query_scalar(
                    "SELECT regional_id FROM identity_patient WHERE birth_date IS NULL \
                     AND golden <> '{}' ORDER BY regional_id LIMIT 500")
                    .fetch_all(pool)
                    .await?);
            if ids.is_empty() {
                return Ok(done);
            }
            for id in ids {
                let Some(p) = self.patient(&id).await? else {
                    continue;
                };
                let k = SearchKeys::of(&p.golden);
                megalis_store::with_pool!(&self.db, pool =>
                    sqlx::query(
                        "UPDATE identity_patient SET birth_name_key = $2, used_name_key = $3, \
                         given_key = $4, birth_date = $5, gender = $6 WHERE regional_id = $1")
                        .bind(&id)
                        .bind(&k.birth_name)
                        .bind(&k.used_name)
                        .bind(&k.given)
                        .bind(&k.birth_date)
                        .bind(k.gender)
                        .execute(pool)
                        .await
                        .map(|_| ())?);
                done += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges_cover_exactly_the_prefix() {
        assert_eq!(prefix_end("LEG"), "LEH");
        assert_eq!(prefix_end("LEZ"), "LE[");
        let (lo, hi) = ("LEG".to_string(), prefix_end("LEG"));
        for key in ["LEG", "LEGOFF", "LEGZZZ"] {
            assert!(key >= lo.as_str() && key < hi.as_str(), "{key}");
        }
        for key in ["LEF", "LEH", "LE", "LGOFF"] {
            assert!(!(key >= lo.as_str() && key < hi.as_str()), "{key}");
        }
    }

    #[test]
    fn caller_text_only_reaches_sql_as_arguments() {
        let q = PatientQuery {
            identifiers: vec![IdentifierQuery::Any("x' OR 1=1 --".into())],
            family: Some("Le Goff'; DROP TABLE identity_patient; --".into()),
            given: Some("Jean%_".into()),
            ..Default::default()
        };
        let sql = where_clause(&q);
        let text = sql.conditions.join(" AND ");
        assert!(!text.contains("DROP") && !text.contains("OR 1=1"), "{text}");
        assert!(sql.args.iter().any(|a| a.contains("OR 1=1")));
        // Normalisation leaves only letters in name keys: LIKE wildcards typed by the caller
        // cannot widen the search.
        assert!(sql.args.iter().any(|a| a == "% JEAN%"), "{:?}", sql.args);
    }
}
