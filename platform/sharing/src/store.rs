//! The sharing records on the database: care relationships, the patient's directives and
//! emergency accesses, and the one query that gathers a patient's [`SharingFacts`] for a
//! decision. The SQL is written once for both backends (`$n` placeholders, which SQLite and
//! PostgreSQL both accept).

use megalis_store::{Database, with_pool};

use crate::decision::{
    CareLink, CareLinkSource, EmergencyAccess, Micros, Reason, SharingFacts, may_declare_emergency,
};
use crate::{Result, SharingError};

/// Limits and durations of the sharing rules, from the platform's configuration.
#[derive(Debug, Clone)]
pub struct SharingSettings {
    /// How long a hospital doctor stays in the care team after the patient's discharge (the
    /// results of a stay keep arriving for weeks).
    pub encounter_follow_up: Micros,
    /// Default and longest duration of an emergency access.
    pub emergency_default: Micros,
    pub emergency_max: Micros,
    /// Longest declared care relationship (a declaration is renewed, not eternal).
    pub declaration_max: Micros,
}

const DAY: Micros = 86_400_000_000;
const HOUR: Micros = 3_600_000_000;

impl Default for SharingSettings {
    fn default() -> Self {
        SharingSettings {
            encounter_follow_up: 90 * DAY,
            emergency_default: 4 * HOUR,
            emergency_max: 24 * HOUR,
            declaration_max: 366 * DAY,
        }
    }
}

/// The shortest justification or emergency reason accepted: a reason is a sentence, not "x".
pub const MIN_REASON_CHARS: usize = 10;

/// Kinds of patient directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirectiveKind {
    /// Objection to regional sharing.
    Objection,
    /// Objection, made beforehand, to emergency access.
    EmergencyObjection,
    /// Explicit consent to one professional outside the care team.
    Consent,
    /// Block of one professional.
    Block,
    /// Mask of one document.
    Mask,
}

impl DirectiveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Objection => "objection",
            Self::EmergencyObjection => "emergency-objection",
            Self::Consent => "consent",
            Self::Block => "block",
            Self::Mask => "mask",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "objection" => Some(Self::Objection),
            "emergency-objection" => Some(Self::EmergencyObjection),
            "consent" => Some(Self::Consent),
            "block" => Some(Self::Block),
            "mask" => Some(Self::Mask),
            _ => None,
        }
    }
}

/// A directive to record.
#[derive(Debug, Clone)]
pub struct NewDirective {
    pub regional_id: String,
    pub kind: DirectiveKind,
    /// For consent and block: the professional's national id.
    pub practitioner: Option<String>,
    /// For mask: the document id.
    pub document_id: Option<String>,
    pub start: Micros,
    pub end: Option<Micros>,
    pub note: String,
    /// Who recorded it (the patient's account, or the professional who recorded the patient's
    /// oral choice).
    pub recorded_by: String,
}

/// A directive as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Directive {
    pub id: i64,
    pub regional_id: String,
    pub kind: DirectiveKind,
    pub practitioner: Option<String>,
    pub document_id: Option<String>,
    pub start: Micros,
    pub end: Option<Micros>,
    pub note: String,
    pub recorded_by: String,
    pub recorded_at: Micros,
    pub revoked_by: Option<String>,
    pub revoked_at: Option<Micros>,
}

impl Directive {
    pub fn is_active(&self, now: Micros) -> bool {
        self.revoked_at.is_none() && self.start <= now && self.end.is_none_or(|e| now < e)
    }
}

/// A care relationship to declare or to record from a referral.
#[derive(Debug, Clone)]
pub struct NewCareLink {
    pub regional_id: String,
    pub practitioner: String,
    pub source: CareLinkSource,
    pub justification: String,
    /// For a referral: the national id of the referring member of the care team.
    pub referred_by: Option<String>,
    pub start: Micros,
    pub end: Option<Micros>,
    pub created_by: String,
}

/// A care relationship as shown to people: where it comes from and for how long.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CareLinkEntry {
    /// `None` for encounter relationships (they are the hospital's, ended by its messages).
    pub id: Option<i64>,
    pub practitioner: String,
    pub source: CareLinkSource,
    /// The justification, the referring professional, or the hospital and visit number.
    pub detail: String,
    pub start: Micros,
    pub end: Option<Micros>,
}

/// An emergency access as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EmergencyEntry {
    pub id: i64,
    pub regional_id: String,
    pub practitioner: String,
    pub reason: String,
    pub start: Micros,
    pub end: Micros,
    pub declared_by: String,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<Micros>,
    pub review_note: Option<String>,
}

/// The sharing records of the region.
#[derive(Clone)]
pub struct SharingStore {
    db: Database,
    settings: SharingSettings,
}

type DirectiveRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
);

type EmergencyRow = (
    i64,
    String,
    String,
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
);

const DIRECTIVE_COLUMNS: &str = "id, regional_id, kind, practitioner, document_id, start_us, \
    end_us, note, recorded_by, recorded_at_us, revoked_by, revoked_at_us";
const EMERGENCY_COLUMNS: &str = "id, regional_id, practitioner, reason, start_us, end_us, \
    declared_by, reviewed_by, reviewed_at_us, review_note";

fn directive(row: DirectiveRow) -> Result<Directive> {
    let kind = DirectiveKind::parse(&row.2)
        .ok_or_else(|| SharingError::Corrupt(format!("directive kind {:?}", row.2)))?;
    Ok(Directive {
        id: row.0,
        regional_id: row.1,
        kind,
        practitioner: row.3,
        document_id: row.4,
        start: row.5,
        end: row.6,
        note: row.7,
        recorded_by: row.8,
        recorded_at: row.9,
        revoked_by: row.10,
        revoked_at: row.11,
    })
}

fn emergency(row: EmergencyRow) -> EmergencyEntry {
    EmergencyEntry {
        id: row.0,
        regional_id: row.1,
        practitioner: row.2,
        reason: row.3,
        start: row.4,
        end: row.5,
        declared_by: row.6,
        reviewed_by: row.7,
        reviewed_at: row.8,
        review_note: row.9,
    }
}

/// `$1, $2, …` for `n` values starting at `from`.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A national id of a health professional: `8` + 11-digit RPPS, or `0` + ADELI (9 digits).
pub fn is_national_id(s: &str) -> bool {
    let digits = s.bytes().all(|b| b.is_ascii_digit());
    digits && ((s.len() == 12 && s.starts_with('8')) || (s.len() == 10 && s.starts_with('0')))
}

impl SharingStore {
    pub fn new(db: Database, settings: SharingSettings) -> Self {
        SharingStore { db, settings }
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    pub fn settings(&self) -> &SharingSettings {
        &self.settings
    }

    /// The patient's regional id and every id merged into it (merges can chain), so that
    /// choices and relationships recorded before a merge keep applying after it.
    pub async fn lineage(&self, regional_id: &str) -> Result<Vec<String>> {
        let mut ids = vec![regional_id.to_string()];
        let mut frontier = vec![regional_id.to_string()];
        // Chains are short; the bound only protects against a cycle in corrupt data.
        for _ in 0..16 {
            if frontier.is_empty() {
                break;
            }
            let sql = format!(
                "SELECT regional_id FROM identity_patient WHERE merged_into IN ({})",
                placeholders(1, frontier.len())
            );
            let found: Vec<String> = with_pool!(&self.db, pool => {
                let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()));
                for id in &frontier {
                    q = q.bind(id.clone());
                }
                q.fetch_all(pool).await?
            });
            frontier = found.into_iter().filter(|f| !ids.contains(f)).collect();
            ids.extend(frontier.iter().cloned());
        }
        Ok(ids)
    }

    /// Everything the access decision needs about a patient, read at the time of the request
    /// (so that a change takes effect on the next request): one query over the four sources
    /// after the lineage, since every request that touches patient data pays for it.
    pub async fn facts(&self, regional_id: &str, now: Micros) -> Result<SharingFacts> {
        let ids = self.lineage(regional_id).await?;
        let n = ids.len();
        // Each branch binds the lineage again: `$1..$n`, `$n+1..$2n`…, so the text works on
        // both backends without array parameters.
        let list = |k: usize| placeholders(1 + k * n, n);
        let sql = format!(
            "SELECT 'd' AS origin, kind, practitioner, document_id, start_us, end_us \
             FROM consent_directive WHERE regional_id IN ({}) AND revoked_at_us IS NULL \
             UNION ALL \
             SELECT 'l', source, practitioner, NULL, start_us, end_us FROM care_link \
             WHERE regional_id IN ({}) AND ended_at_us IS NULL \
             UNION ALL \
             SELECT 'e', role, e.practitioner, NULL, e.start_us, e.end_us \
             FROM encounter_participant e JOIN identity_source s \
             ON s.authority = e.authority AND s.local_id = e.local_id \
             WHERE s.regional_id IN ({}) \
             UNION ALL \
             SELECT 'x', NULL, practitioner, NULL, start_us, end_us FROM emergency_access \
             WHERE regional_id IN ({})",
            list(0),
            list(1),
            list(2),
            list(3)
        );
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
            Option<i64>,
        );
        let rows: Vec<Row> = with_pool!(&self.db, pool => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for _ in 0..4 {
                for id in &ids {
                    q = q.bind(id.clone());
                }
            }
            q.fetch_all(pool).await?
        });
        let follow_up = self.settings.encounter_follow_up;
        let mut facts = SharingFacts {
            regional_ids: ids,
            ..SharingFacts::default()
        };
        let choices = &mut facts.choices;
        for (origin, kind, practitioner, document, start, end) in rows {
            let active = start <= now && end.is_none_or(|e| now < e);
            match origin.as_str() {
                "d" if active => {
                    let kind = kind
                        .as_deref()
                        .and_then(DirectiveKind::parse)
                        .ok_or_else(|| SharingError::Corrupt(format!("directive kind {kind:?}")))?;
                    match kind {
                        DirectiveKind::Objection => choices.objects_to_sharing = true,
                        DirectiveKind::EmergencyObjection => choices.objects_to_emergency = true,
                        DirectiveKind::Consent => {
                            choices.consents.extend(practitioner.map(|p| (p, end)))
                        }
                        DirectiveKind::Block => choices.blocked.extend(practitioner),
                        DirectiveKind::Mask => choices.masked_documents.extend(document),
                    }
                }
                "d" => {}
                "l" => {
                    let source =
                        kind.as_deref()
                            .and_then(CareLinkSource::parse)
                            .ok_or_else(|| {
                                SharingError::Corrupt(format!("care link source {kind:?}"))
                            })?;
                    facts.care_links.push(CareLink {
                        practitioner: practitioner.unwrap_or_default(),
                        source,
                        start,
                        end,
                    });
                }
                "e" => facts.care_links.push(CareLink {
                    practitioner: practitioner.unwrap_or_default(),
                    source: CareLinkSource::Encounter,
                    start,
                    end: end.map(|e| e.saturating_add(follow_up)),
                }),
                _ => facts.emergencies.push(EmergencyAccess {
                    practitioner: practitioner.unwrap_or_default(),
                    start,
                    end: end.unwrap_or(start),
                }),
            }
        }
        Ok(facts)
    }

    async fn directive_rows(
        &self,
        ids: &[String],
        include_revoked: bool,
    ) -> Result<Vec<Directive>> {
        let filter = if include_revoked {
            ""
        } else {
            " AND revoked_at_us IS NULL"
        };
        let sql = format!(
            "SELECT {DIRECTIVE_COLUMNS} FROM consent_directive WHERE regional_id IN ({}){filter} \
             ORDER BY recorded_at_us DESC, id DESC",
            placeholders(1, ids.len())
        );
        let rows: Vec<DirectiveRow> = with_pool!(&self.db, pool => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for id in ids {
                q = q.bind(id.clone());
            }
            q.fetch_all(pool).await?
        });
        rows.into_iter().map(directive).collect()
    }

    /// The patient's directives, newest first; revoked ones too when asked (the history the
    /// patient and FHIR `Consent` show).
    pub async fn directives(
        &self,
        regional_id: &str,
        include_revoked: bool,
    ) -> Result<Vec<Directive>> {
        let ids = self.lineage(regional_id).await?;
        self.directive_rows(&ids, include_revoked).await
    }

    /// One directive by id.
    pub async fn directive(&self, id: i64) -> Result<Option<Directive>> {
        let sql = format!("SELECT {DIRECTIVE_COLUMNS} FROM consent_directive WHERE id = $1");
        let row: Option<DirectiveRow> = with_pool!(&self.db, pool =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(pool).await?);
        row.map(directive).transpose()
    }

    /// Records a directive after checking its shape. An identical active directive is not
    /// recorded twice: its id is returned.
    pub async fn record_directive(&self, d: &NewDirective, now: Micros) -> Result<i64> {
        validate_directive(d)?;
        let existing = self
            .directives(&d.regional_id, false)
            .await?
            .into_iter()
            .find(|x| {
                x.kind == d.kind
                    && x.practitioner == d.practitioner
                    && x.document_id == d.document_id
                    && x.is_active(now)
            });
        if let Some(x) = existing {
            return Ok(x.id);
        }
        let id: i64 = with_pool!(&self.db, pool =>
            sqlx::query_scalar(
                "INSERT INTO consent_directive (regional_id, kind, practitioner, document_id, \
                 start_us, end_us, note, recorded_by, recorded_at_us) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id")
                .bind(&d.regional_id)
                .bind(d.kind.as_str())
                .bind(&d.practitioner)
                .bind(&d.document_id)
                .bind(d.start)
                .bind(d.end)
                .bind(&d.note)
                .bind(&d.recorded_by)
                .bind(now)
                .fetch_one(pool)
                .await?);
        Ok(id)
    }

    /// Revokes a directive of this patient (or of a patient merged into it). Revoking twice is
    /// harmless; a directive of another patient is "not found".
    pub async fn revoke_directive(
        &self,
        regional_id: &str,
        id: i64,
        by: &str,
        now: Micros,
    ) -> Result<Directive> {
        let ids = self.lineage(regional_id).await?;
        let found = self
            .directive(id)
            .await?
            .filter(|d| ids.contains(&d.regional_id))
            .ok_or_else(|| SharingError::NotFound(format!("directive {id}")))?;
        if found.revoked_at.is_some() {
            return Ok(found);
        }
        with_pool!(&self.db, pool =>
            sqlx::query("UPDATE consent_directive SET revoked_by = $1, revoked_at_us = $2 \
                         WHERE id = $3 AND revoked_at_us IS NULL")
                .bind(by)
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected());
        Ok(Directive {
            revoked_by: Some(by.to_string()),
            revoked_at: Some(now),
            ..found
        })
    }

    /// Declares a care relationship (the professional's own declaration, or a referral by a
    /// member of the care team, checked here against the team as it stands now).
    pub async fn add_care_link(&self, link: &NewCareLink, now: Micros) -> Result<i64> {
        if !is_national_id(&link.practitioner) {
            return Err(SharingError::Invalid(format!(
                "{:?} is not a health professional's national id (8 + RPPS)",
                link.practitioner
            )));
        }
        if link.justification.trim().chars().count() < MIN_REASON_CHARS {
            return Err(SharingError::Invalid(format!(
                "a care relationship needs a justification of at least {MIN_REASON_CHARS} characters"
            )));
        }
        let end = link
            .end
            .unwrap_or(link.start + self.settings.declaration_max);
        if end <= link.start {
            return Err(SharingError::Invalid("the end is before the start".into()));
        }
        if end - link.start > self.settings.declaration_max {
            return Err(SharingError::Invalid(format!(
                "a declared care relationship lasts at most {} days; renew it then",
                self.settings.declaration_max / DAY
            )));
        }
        match link.source {
            CareLinkSource::Encounter => {
                return Err(SharingError::Invalid(
                    "encounter relationships come from the hospitals' ADT feed".into(),
                ));
            }
            CareLinkSource::Declaration => {
                if link.referred_by.is_some() {
                    return Err(SharingError::Invalid(
                        "a declaration names no referring professional".into(),
                    ));
                }
            }
            CareLinkSource::Referral => {
                let Some(referrer) = &link.referred_by else {
                    return Err(SharingError::Invalid(
                        "a referral names the referring professional".into(),
                    ));
                };
                let facts = self.facts(&link.regional_id, now).await?;
                let in_team = facts
                    .care_links
                    .iter()
                    .any(|l| &l.practitioner == referrer && l.is_active(now));
                if !in_team {
                    return Err(SharingError::Refused(Reason::NotInCareTeam));
                }
            }
        }
        let id: i64 = with_pool!(&self.db, pool =>
            sqlx::query_scalar(
                "INSERT INTO care_link (regional_id, practitioner, source, justification, \
                 referred_by, start_us, end_us, created_by, created_at_us) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id")
                .bind(&link.regional_id)
                .bind(&link.practitioner)
                .bind(link.source.as_str())
                .bind(link.justification.trim())
                .bind(&link.referred_by)
                .bind(link.start)
                .bind(end)
                .bind(&link.created_by)
                .bind(now)
                .fetch_one(pool)
                .await?);
        Ok(id)
    }

    /// Ends a declared relationship now (the professional leaves the team, or the patient asks).
    pub async fn end_care_link(
        &self,
        regional_id: &str,
        id: i64,
        by: &str,
        now: Micros,
    ) -> Result<()> {
        let ids = self.lineage(regional_id).await?;
        let sql = format!(
            "UPDATE care_link SET ended_by = $1, ended_at_us = $2 \
             WHERE id = $3 AND ended_at_us IS NULL AND regional_id IN ({})",
            placeholders(4, ids.len())
        );
        let done = with_pool!(&self.db, pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(by).bind(now).bind(id);
            for i in &ids {
                q = q.bind(i.clone());
            }
            q.execute(pool).await?.rows_affected()
        });
        if done == 0 {
            return Err(SharingError::NotFound(format!("care relationship {id}")));
        }
        Ok(())
    }

    /// The patient's care team as people see it, active and past, newest first.
    pub async fn care_team(&self, regional_id: &str) -> Result<Vec<CareLinkEntry>> {
        let ids = self.lineage(regional_id).await?;
        let list = placeholders(1, ids.len());
        let links_sql = format!(
            "SELECT id, practitioner, source, justification, referred_by, start_us, end_us, \
             ended_at_us FROM care_link WHERE regional_id IN ({list})"
        );
        let encounters_sql = format!(
            "SELECT e.practitioner, e.role, e.authority, e.visit_number, e.start_us, e.end_us \
             FROM encounter_participant e JOIN identity_source s \
             ON s.authority = e.authority AND s.local_id = e.local_id \
             WHERE s.regional_id IN ({list})"
        );
        #[allow(clippy::type_complexity)]
        let (links, encounters): (
            Vec<(
                i64,
                String,
                String,
                String,
                Option<String>,
                i64,
                Option<i64>,
                Option<i64>,
            )>,
            Vec<(String, String, String, String, i64, Option<i64>)>,
        ) = with_pool!(&self.db, pool => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(links_sql.clone()));
            for id in &ids {
                q = q.bind(id.clone());
            }
            let links = q.fetch_all(pool).await?;
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(encounters_sql.clone()));
            for id in &ids {
                q = q.bind(id.clone());
            }
            (links, q.fetch_all(pool).await?)
        });
        let mut out = Vec::new();
        for (id, practitioner, source, justification, referred_by, start, end, ended) in links {
            let source = CareLinkSource::parse(&source)
                .ok_or_else(|| SharingError::Corrupt(format!("care link source {source:?}")))?;
            let detail = match referred_by {
                Some(r) => format!("{justification} (adressé par {r})"),
                None => justification,
            };
            out.push(CareLinkEntry {
                id: Some(id),
                practitioner,
                source,
                detail,
                start,
                // Ended early: the end is when it was ended.
                end: match (end, ended) {
                    (Some(e), Some(x)) => Some(e.min(x)),
                    (e, x) => e.or(x),
                },
            });
        }
        let follow_up = self.settings.encounter_follow_up;
        for (practitioner, role, authority, visit, start, end) in encounters {
            out.push(CareLinkEntry {
                id: None,
                practitioner,
                source: CareLinkSource::Encounter,
                detail: format!("{role}, séjour {visit} ({authority})"),
                start,
                end: end.map(|e| e.saturating_add(follow_up)),
            });
        }
        out.sort_by(|a, b| {
            b.start
                .cmp(&a.start)
                .then(a.practitioner.cmp(&b.practitioner))
        });
        Ok(out)
    }

    /// Patients whose care team this professional is in now (the clinician's "my patients").
    pub async fn patients_of(&self, practitioner: &str, now: Micros) -> Result<Vec<String>> {
        let follow_up = self.settings.encounter_follow_up;
        let rows: Vec<String> = with_pool!(&self.db, pool =>
            sqlx::query_scalar(
                "SELECT regional_id FROM care_link WHERE practitioner = $1 AND ended_at_us IS NULL \
                 AND start_us <= $2 AND (end_us IS NULL OR end_us > $2) \
                 UNION \
                 SELECT s.regional_id FROM encounter_participant e JOIN identity_source s \
                 ON s.authority = e.authority AND s.local_id = e.local_id \
                 WHERE e.practitioner = $1 AND e.start_us <= $2 \
                 AND (e.end_us IS NULL OR e.end_us > $3) \
                 ORDER BY 1")
                .bind(practitioner)
                .bind(now)
                .bind(now - follow_up)
                .fetch_all(pool)
                .await?);
        Ok(rows)
    }

    /// Declares an emergency access. Refused when the patient objected beforehand or blocked
    /// the professional; the reason must be stated; the duration is bounded.
    pub async fn declare_emergency(
        &self,
        regional_id: &str,
        practitioner: &str,
        reason: &str,
        duration: Option<Micros>,
        declared_by: &str,
        now: Micros,
    ) -> Result<EmergencyEntry> {
        if reason.trim().chars().count() < MIN_REASON_CHARS {
            return Err(SharingError::Invalid(format!(
                "an emergency access needs a stated reason of at least {MIN_REASON_CHARS} characters"
            )));
        }
        let duration = duration.unwrap_or(self.settings.emergency_default);
        if duration <= 0 || duration > self.settings.emergency_max {
            return Err(SharingError::Invalid(format!(
                "an emergency access lasts at most {} hours",
                self.settings.emergency_max / HOUR
            )));
        }
        let facts = self.facts(regional_id, now).await?;
        may_declare_emergency(practitioner, &facts.choices).map_err(SharingError::Refused)?;
        let end = now + duration;
        let id: i64 = with_pool!(&self.db, pool =>
            sqlx::query_scalar(
                "INSERT INTO emergency_access (regional_id, practitioner, reason, start_us, end_us, \
                 declared_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
                .bind(regional_id)
                .bind(practitioner)
                .bind(reason.trim())
                .bind(now)
                .bind(end)
                .bind(declared_by)
                .fetch_one(pool)
                .await?);
        Ok(EmergencyEntry {
            id,
            regional_id: regional_id.to_string(),
            practitioner: practitioner.to_string(),
            reason: reason.trim().to_string(),
            start: now,
            end,
            declared_by: declared_by.to_string(),
            reviewed_by: None,
            reviewed_at: None,
            review_note: None,
        })
    }

    /// Emergency accesses the designated officer has not reviewed yet, oldest first.
    pub async fn emergencies_to_review(&self) -> Result<Vec<EmergencyEntry>> {
        let sql = format!(
            "SELECT {EMERGENCY_COLUMNS} FROM emergency_access WHERE reviewed_at_us IS NULL \
             ORDER BY id"
        );
        let rows: Vec<EmergencyRow> = with_pool!(&self.db, pool =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).fetch_all(pool).await?);
        Ok(rows.into_iter().map(emergency).collect())
    }

    /// The patient's emergency accesses, newest first.
    pub async fn emergencies_of(&self, regional_id: &str) -> Result<Vec<EmergencyEntry>> {
        let ids = self.lineage(regional_id).await?;
        let sql = format!(
            "SELECT {EMERGENCY_COLUMNS} FROM emergency_access WHERE regional_id IN ({}) \
             ORDER BY start_us DESC, id DESC",
            placeholders(1, ids.len())
        );
        let rows: Vec<EmergencyRow> = with_pool!(&self.db, pool => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for id in &ids {
                q = q.bind(id.clone());
            }
            q.fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(emergency).collect())
    }

    /// The officer's review of an emergency access.
    pub async fn review_emergency(
        &self,
        id: i64,
        officer: &str,
        note: &str,
        now: Micros,
    ) -> Result<()> {
        let done = with_pool!(&self.db, pool =>
            sqlx::query("UPDATE emergency_access SET reviewed_by = $1, reviewed_at_us = $2, \
                         review_note = $3 WHERE id = $4 AND reviewed_at_us IS NULL")
                .bind(officer)
                .bind(now)
                .bind(note.trim())
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected());
        if done == 0 {
            return Err(SharingError::NotFound(format!(
                "emergency access {id} awaiting review"
            )));
        }
        Ok(())
    }
}

fn validate_directive(d: &NewDirective) -> Result<()> {
    use DirectiveKind::*;
    let needs_practitioner = matches!(d.kind, Consent | Block);
    match (&d.practitioner, needs_practitioner) {
        (Some(p), true) if !is_national_id(p) => {
            return Err(SharingError::Invalid(format!(
                "{p:?} is not a health professional's national id (8 + RPPS)"
            )));
        }
        (None, true) => {
            return Err(SharingError::Invalid(format!(
                "a {} names the professional",
                d.kind.as_str()
            )));
        }
        (Some(_), false) => {
            return Err(SharingError::Invalid(format!(
                "a {} names no professional",
                d.kind.as_str()
            )));
        }
        _ => {}
    }
    match (&d.document_id, d.kind == Mask) {
        (None, true) => return Err(SharingError::Invalid("a mask names the document".into())),
        (Some(_), false) => {
            return Err(SharingError::Invalid(format!(
                "a {} names no document",
                d.kind.as_str()
            )));
        }
        (Some(id), true) if id.is_empty() || id.len() > 128 => {
            return Err(SharingError::Invalid("invalid document id".into()));
        }
        _ => {}
    }
    if d.end.is_some_and(|e| e <= d.start) {
        return Err(SharingError::Invalid("the end is before the start".into()));
    }
    if d.note.chars().count() > 2000 {
        return Err(SharingError::Invalid(
            "the note is longer than 2,000 characters".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_ids() {
        assert!(is_national_id("810001234567"));
        assert!(is_national_id("0123456789"));
        assert!(!is_national_id("81000123456"));
        assert!(!is_national_id("910001234567"));
        assert!(!is_national_id("8100012345a7"));
        assert!(!is_national_id(""));
    }

    #[test]
    fn directive_shapes() {
        let base = NewDirective {
            regional_id: "P1".into(),
            kind: DirectiveKind::Objection,
            practitioner: None,
            document_id: None,
            start: 0,
            end: None,
            note: String::new(),
            recorded_by: "patient".into(),
        };
        assert!(validate_directive(&base).is_ok());
        let consent_without = NewDirective {
            kind: DirectiveKind::Consent,
            ..base.clone()
        };
        assert!(validate_directive(&consent_without).is_err());
        let consent = NewDirective {
            practitioner: Some("810001234567".into()),
            ..consent_without
        };
        assert!(validate_directive(&consent).is_ok());
        let objection_with_practitioner = NewDirective {
            practitioner: Some("810001234567".into()),
            ..base.clone()
        };
        assert!(validate_directive(&objection_with_practitioner).is_err());
        let mask = NewDirective {
            kind: DirectiveKind::Mask,
            document_id: Some("doc-1".into()),
            ..base.clone()
        };
        assert!(validate_directive(&mask).is_ok());
        let backwards = NewDirective {
            start: 10,
            end: Some(5),
            ..base
        };
        assert!(validate_directive(&backwards).is_err());
    }
}
