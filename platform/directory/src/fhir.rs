//! FHIR R4 views of the directory: `Practitioner`, `PractitionerRole` and `Organization`, read
//! and search, as JSON. The HTTP layer (in the server) only routes and maps errors; what a
//! search accepts is defined here once ([`SEARCH_PARAMETERS`]) and serves both the validation of
//! requests and the CapabilityStatement ([`capability_resources`]).
//!
//! Search semantics (FHIR R4 §3.1.1.4): string parameters (`name`, `family`, `given`) match the
//! start of a name part ignoring case and accents, `:exact` the whole name as written,
//! `:contains` anywhere; token parameters take `system|code` or `code`; repeated parameters are
//! combined with AND. Parameters we do not support are refused (400) rather than ignored, so a
//! client never mistakes an unfiltered result for a filtered one. Paging: `_count` (default 20,
//! at most 200) and `_offset`, with `self`, `first`, `previous` and `next` links.
//!
//! Every value reaches the database as a bound parameter; `%`, `_` and `\` are escaped in `LIKE`
//! patterns.

use megalis_store::{Database, with_pool};
use serde_json::{Map, Value, json};

use crate::model::fold;
use crate::sql::{ACTIVITY, Arg, ORGANISATION, PRACTITIONER, Table, bind_args, escape_like};
use crate::{
    DirectoryError, FINESS_SYSTEM, NATIONAL_ID_SYSTEM, PROFESSION_SYSTEM, RPPS_SYSTEM, Result,
    SIRET_SYSTEM, SPECIALTY_SYSTEM, STRUCTURE_ID_SYSTEM,
};

/// TRE_R23 modes of practice.
pub const MODE_SYSTEM: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R23-ModeExercice/FHIR/TRE-R23-ModeExercice";
/// TRE_R02 sectors of activity.
pub const SECTOR_SYSTEM: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite";

pub const DEFAULT_COUNT: usize = 20;
pub const MAX_COUNT: usize = 200;

/// The resource types of the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    Practitioner,
    PractitionerRole,
    Organization,
}

impl ResourceType {
    pub const ALL: [ResourceType; 3] = [
        ResourceType::Practitioner,
        ResourceType::PractitionerRole,
        ResourceType::Organization,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Practitioner => "Practitioner",
            ResourceType::PractitionerRole => "PractitionerRole",
            ResourceType::Organization => "Organization",
        }
    }

    fn table(self) -> &'static Table {
        match self {
            ResourceType::Practitioner => &PRACTITIONER,
            ResourceType::PractitionerRole => &ACTIVITY,
            ResourceType::Organization => &ORGANISATION,
        }
    }
}

/// A supported search parameter: (name, FHIR type, documentation).
pub type SearchParameter = (&'static str, &'static str, &'static str);

/// Search parameters supported, per resource type.
pub const SEARCH_PARAMETERS: &[(ResourceType, &[SearchParameter])] = &[
    (
        ResourceType::Practitioner,
        &[
            ("_id", "token", "National id (8+RPPS or 0+ADELI)"),
            (
                "identifier",
                "token",
                "urn:oid:1.2.250.1.71.4.2.1|8+RPPS, http://rpps.fr|RPPS, or a bare value",
            ),
            (
                "name",
                "string",
                "Start of the family or given name (case and accents ignored); :exact, :contains",
            ),
            (
                "family",
                "string",
                "Start of the family name; :exact, :contains",
            ),
            (
                "given",
                "string",
                "Start of the given name; :exact, :contains",
            ),
            (
                "active",
                "token",
                "true or false (closed in the national directory)",
            ),
            ("_lastUpdated", "date", "eq, ge, gt, le, lt prefixes"),
        ],
    ),
    (
        ResourceType::PractitionerRole,
        &[
            ("_id", "token", "Activity id"),
            ("practitioner", "reference", "Practitioner/ID or ID"),
            ("organization", "reference", "Organization/ID or ID"),
            (
                "role",
                "token",
                "TRE_G15 profession code, e.g. 10 (médecin)",
            ),
            ("specialty", "token", "TRE_R38 specialty code, e.g. SM54"),
            ("active", "token", "true or false"),
            ("_lastUpdated", "date", "eq, ge, gt, le, lt prefixes"),
        ],
    ),
    (
        ResourceType::Organization,
        &[
            ("_id", "token", "National structure technical id"),
            (
                "identifier",
                "token",
                "http://finess.sante.gouv.fr|FINESS, http://sirene.fr|SIRET, or a bare value",
            ),
            ("name", "string", "Start of the name; :exact, :contains"),
            ("active", "token", "true or false"),
            ("_lastUpdated", "date", "eq, ge, gt, le, lt prefixes"),
        ],
    ),
];

fn parameters_of(rt: ResourceType) -> &'static [SearchParameter] {
    SEARCH_PARAMETERS
        .iter()
        .find(|(t, _)| *t == rt)
        .map(|(_, p)| *p)
        .unwrap_or(&[])
}

/// The `rest.resource` entries of the CapabilityStatement this module contributes.
pub fn capability_resources() -> Vec<Value> {
    ResourceType::ALL
        .into_iter()
        .map(|rt| {
            let mut params: Vec<Value> = parameters_of(rt)
                .iter()
                .map(|(name, ty, doc)| json!({"name": name, "type": ty, "documentation": doc}))
                .collect();
            params.push(json!({"name": "_count", "type": "number",
                "documentation": format!("Page size, default {DEFAULT_COUNT}, at most {MAX_COUNT}")}));
            params.push(json!({"name": "_offset", "type": "number",
                "documentation": "Index of the first match of the page (paging links use it)"}));
            json!({
                "type": rt.name(),
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": params,
            })
        })
        .collect()
}

/// A row of a directory table: its content columns (all text) and state.
struct Record {
    text: Vec<Option<String>>,
    active: bool,
    updated_us: i64,
    closed_us: Option<i64>,
    table: &'static Table,
}

impl Record {
    fn get(&self, column: &str) -> Option<&str> {
        let i = self.table.content.iter().position(|c| *c == column)?;
        self.text[i].as_deref().filter(|s| !s.is_empty())
    }
}

fn select_list(table: &Table) -> String {
    let mut s = table.content.join(", ");
    s.push_str(", active, updated_at_us, closed_at_us");
    s
}

async fn fetch(
    db: &Database,
    table: &'static Table,
    sql: String,
    args: &[Arg<'_>],
) -> Result<Vec<Record>> {
    use sqlx::Row;
    let records = with_pool!(db, pool => {
        let rows = bind_args!(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|row| {
                let mut text = Vec::with_capacity(table.content.len());
                for c in table.content {
                    text.push(row.try_get::<Option<String>, _>(*c)?);
                }
                Ok::<_, sqlx::Error>(Record {
                    text,
                    active: row.try_get("active")?,
                    updated_us: row.try_get("updated_at_us")?,
                    closed_us: row.try_get("closed_at_us")?,
                    table,
                })
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    Ok(records)
}

/// Reads one resource by id; `None` when unknown. Closed entries are returned, `active: false`.
pub async fn read(db: &Database, rt: ResourceType, id: &str) -> Result<Option<Value>> {
    let table = rt.table();
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = $1",
        select_list(table),
        table.name,
        table.key
    );
    let records = fetch(db, table, sql, &[Arg::text(id)]).await?;
    Ok(records.first().map(|r| to_resource(rt, r)))
}

fn timestamp(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn coding(system: &str, code: &str, display: Option<&str>) -> Value {
    let mut c = Map::new();
    c.insert("system".into(), json!(system));
    c.insert("code".into(), json!(code));
    if let Some(d) = display.filter(|d| !d.is_empty()) {
        c.insert("display".into(), json!(d));
    }
    Value::Object(c)
}

fn to_resource(rt: ResourceType, r: &Record) -> Value {
    let mut o = Map::new();
    o.insert("resourceType".into(), json!(rt.name()));
    o.insert("id".into(), json!(r.get(r.table.key).unwrap_or_default()));
    o.insert(
        "meta".into(),
        json!({"lastUpdated": timestamp(r.updated_us)}),
    );
    o.insert("active".into(), json!(r.active));
    match rt {
        ResourceType::Practitioner => practitioner(r, &mut o),
        ResourceType::PractitionerRole => practitioner_role(r, &mut o),
        ResourceType::Organization => organization(r, &mut o),
    }
    Value::Object(o)
}

fn practitioner(r: &Record, o: &mut Map<String, Value>) {
    let national_id = r.get("national_id").unwrap_or_default();
    let mut identifiers = vec![json!({
        "use": "official",
        "type": {"text": "Identifiant national de professionnel de santé (IDNPS)"},
        "system": NATIONAL_ID_SYSTEM,
        "value": national_id,
    })];
    if r.get("id_kind") == Some("8")
        && let Some(rpps) = r.get("identifier")
    {
        identifiers.push(json!({"type": {"text": "RPPS"}, "system": RPPS_SYSTEM, "value": rpps}));
    }
    o.insert("identifier".into(), json!(identifiers));
    let mut name = Map::new();
    name.insert("use".into(), json!("official"));
    if let Some(f) = r.get("family_name") {
        name.insert("family".into(), json!(f));
    }
    if let Some(g) = r.get("given_name") {
        name.insert("given".into(), json!([g]));
    }
    if let Some(p) = r.get("practice_civility_label") {
        name.insert("prefix".into(), json!([p]));
    }
    o.insert("name".into(), json!([name]));
    if let Some(gender) = match r.get("civility_code") {
        Some("M") => Some("male"),
        Some("MME") | Some("MLLE") => Some("female"),
        _ => None,
    } {
        o.insert("gender".into(), json!(gender));
    }
    if let Some(mss) = r.get("mssante_address") {
        o.insert(
            "telecom".into(),
            json!([{"system": "email", "value": mss, "use": "work"}]),
        );
    }
    if let Some(code) = r.get("profession_code") {
        o.insert(
            "qualification".into(),
            json!([{"code": {"coding": [coding(PROFESSION_SYSTEM, code, r.get("profession_label"))]}}]),
        );
    }
}

fn practitioner_role(r: &Record, o: &mut Map<String, Value>) {
    if let Some(p) = r.get("national_id") {
        o.insert(
            "practitioner".into(),
            json!({"reference": format!("Practitioner/{p}")}),
        );
    }
    if let Some(s) = r.get("structure_id") {
        o.insert(
            "organization".into(),
            json!({"reference": format!("Organization/{s}")}),
        );
    }
    let mut codes = Vec::new();
    if let Some(code) = r.get("profession_code") {
        codes.push(json!({"coding": [coding(PROFESSION_SYSTEM, code, r.get("profession_label"))]}));
    }
    if let Some(mode) = r.get("mode_code") {
        codes.push(json!({"coding": [coding(MODE_SYSTEM, mode, r.get("mode_label"))]}));
    }
    if !codes.is_empty() {
        o.insert("code".into(), json!(codes));
    }
    if let Some(code) = r.get("specialty_code") {
        // Ordinal specialties (kind `S`) are TRE_R38 codes; other kinds of know-how
        // (competences, DESC…) belong to other NOS tables we do not map yet: text only.
        let specialty = if r.get("specialty_kind_code") == Some("S") {
            json!({"coding": [coding(SPECIALTY_SYSTEM, code, r.get("specialty_label"))]})
        } else {
            json!({"text": r.get("specialty_label").unwrap_or(code)})
        };
        o.insert("specialty".into(), json!([specialty]));
    }
    if let Some(closed) = r.closed_us.filter(|_| !r.active) {
        o.insert("period".into(), json!({"end": timestamp(closed)}));
    }
}

fn organization(r: &Record, o: &mut Map<String, Value>) {
    let mut ids = vec![json!({
        "use": "official",
        "type": {"text": "Identifiant national de structure"},
        "system": STRUCTURE_ID_SYSTEM,
        "value": r.get("structure_id").unwrap_or_default(),
    })];
    if let Some(f) = r.get("finess_site") {
        ids.push(
            json!({"type": {"text": "FINESS géographique"}, "system": FINESS_SYSTEM, "value": f}),
        );
    }
    if let Some(f) = r.get("finess_legal") {
        ids.push(
            json!({"type": {"text": "FINESS juridique"}, "system": FINESS_SYSTEM, "value": f}),
        );
    }
    if let Some(s) = r.get("siret") {
        ids.push(json!({"type": {"text": "SIRET"}, "system": SIRET_SYSTEM, "value": s}));
    }
    o.insert("identifier".into(), json!(ids));
    if let Some(code) = r.get("sector_code") {
        o.insert(
            "type".into(),
            json!([{"coding": [coding(SECTOR_SYSTEM, code, r.get("sector_label"))]}]),
        );
    }
    if let Some(n) = r.get("name") {
        o.insert("name".into(), json!(n));
    }
    if let Some(t) = r.get("trade_name").filter(|t| Some(*t) != r.get("name")) {
        o.insert("alias".into(), json!([t]));
    }
    let mut telecom = Vec::new();
    for (column, system) in [
        ("phone", "phone"),
        ("phone2", "phone"),
        ("fax", "fax"),
        ("email", "email"),
    ] {
        if let Some(v) = r.get(column) {
            telecom.push(json!({"system": system, "value": v, "use": "work"}));
        }
    }
    if !telecom.is_empty() {
        o.insert("telecom".into(), json!(telecom));
    }
    let mut address = Map::new();
    address.insert("use".into(), json!("work"));
    let lines: Vec<&str> = r
        .get("address_lines")
        .map(|l| l.split('\n').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if !lines.is_empty() {
        address.insert("line".into(), json!(lines));
    }
    for (column, field) in [
        ("city", "city"),
        ("postal_code", "postalCode"),
        ("district", "district"),
        ("country", "country"),
    ] {
        if let Some(v) = r.get(column) {
            address.insert(field.into(), json!(v));
        }
    }
    if address.len() > 1 {
        o.insert("address".into(), json!([address]));
    }
}

/// A parsed search: SQL conditions with their arguments, and the page.
struct Search {
    conditions: Vec<String>,
    args: Vec<Arg<'static>>,
    count: usize,
    offset: usize,
    /// The accepted parameters, for the paging links.
    echo: Vec<(String, String)>,
}

impl Search {
    /// Adds a condition; `{}` placeholders in `sql` become the next `$n`, one per argument.
    fn push(&mut self, sql: &str, args: Vec<Arg<'static>>) {
        let mut out = String::new();
        let mut parts = sql.split("{}");
        out.push_str(parts.next().unwrap_or_default());
        for (part, arg) in parts.zip(args) {
            self.args.push(arg);
            out.push_str(&format!("${}", self.args.len()));
            out.push_str(part);
        }
        self.conditions.push(out);
    }
}

fn invalid(msg: impl Into<String>) -> DirectoryError {
    DirectoryError::InvalidSearch(msg.into())
}

/// Splits `system|code` (or `code`) of a token parameter.
fn token(value: &str) -> (Option<&str>, &str) {
    match value.split_once('|') {
        Some((system, code)) => (Some(system), code),
        None => (None, value),
    }
}

fn reference<'a>(value: &'a str, rt: &str) -> &'a str {
    value
        .strip_prefix(rt)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(value)
}

/// `[lo, hi)` in microseconds of a FHIR date or dateTime at its own precision.
fn date_range(value: &str) -> Option<(i64, i64)> {
    use time::{Date, Month, OffsetDateTime, format_description::well_known::Rfc3339};
    let us = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1_000) as i64;
    if value.contains('T') {
        let t = OffsetDateTime::parse(value, &Rfc3339).ok()?;
        // Precision of the value: to the microsecond if it has a fraction, else the second.
        let width = if value.contains('.') { 1 } else { 1_000_000 };
        return Some((us(t), us(t) + width));
    }
    let parts: Vec<&str> = value.split('-').collect();
    let year: i32 = parts
        .first()?
        .parse()
        .ok()
        .filter(|_| parts[0].len() == 4)?;
    let month = parts
        .get(1)
        .map(|m| m.parse::<u8>().ok())
        .unwrap_or(Some(1))?;
    let day = parts
        .get(2)
        .map(|d| d.parse::<u8>().ok())
        .unwrap_or(Some(1))?;
    if parts.len() > 3 {
        return None;
    }
    let start = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let end = match parts.len() {
        1 => Date::from_calendar_date(year + 1, Month::January, 1).ok()?,
        2 => {
            let next = Month::try_from(month).ok()?.next();
            let y = if next == Month::January {
                year + 1
            } else {
                year
            };
            Date::from_calendar_date(y, next, 1).ok()?
        }
        _ => start.next_day()?,
    };
    Some((
        us(start.midnight().assume_utc()),
        us(end.midnight().assume_utc()),
    ))
}

fn parse_search(rt: ResourceType, params: &[(String, String)]) -> Result<Search> {
    let table = rt.table();
    let mut s = Search {
        conditions: Vec::new(),
        args: Vec::new(),
        count: DEFAULT_COUNT,
        offset: 0,
        echo: Vec::new(),
    };
    let supported = parameters_of(rt);
    for (raw_name, value) in params {
        let (name, modifier) = match raw_name.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (raw_name.as_str(), None),
        };
        match name {
            "_count" | "_offset" => {
                let n: usize = value.parse().map_err(|_| {
                    invalid(format!(
                        "{name} must be a non-negative integer, not {value:?}"
                    ))
                })?;
                if name == "_count" {
                    s.count = n.min(MAX_COUNT);
                } else {
                    s.offset = n;
                }
                continue;
            }
            "_format" if value.contains("json") => continue,
            _ => {}
        }
        let Some((_, kind, _)) = supported.iter().find(|(n, _, _)| *n == name) else {
            return Err(invalid(format!(
                "search parameter {name:?} is not supported on {} (see /fhir/metadata)",
                rt.name()
            )));
        };
        if value.is_empty() {
            return Err(invalid(format!("search parameter {name:?} has no value")));
        }
        if value.contains(',') && *kind != "string" {
            return Err(invalid(format!(
                "{name}: lists of values (a,b) are not supported; repeat the search instead"
            )));
        }
        match (*kind, modifier) {
            ("string", None | Some("exact") | Some("contains")) => {}
            (_, None) => {}
            (_, Some(m)) => {
                return Err(invalid(format!("modifier :{m} is not supported on {name}")));
            }
        }
        s.echo.push((raw_name.clone(), value.clone()));
        let key = table.key;
        match (rt, name) {
            (_, "_id") => s.push(&format!("{key} = {{}}"), vec![Arg::owned(value.clone())]),
            (_, "active") => {
                let b = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(invalid(format!(
                            "active must be true or false, not {value:?}"
                        )));
                    }
                };
                s.push("active = {}", vec![Arg::Bool(b)]);
            }
            (_, "_lastUpdated") => {
                let (prefix, date) = match value.get(..2) {
                    Some(p @ ("eq" | "ge" | "gt" | "le" | "lt")) => (p, &value[2..]),
                    Some("ne" | "sa" | "eb" | "ap") => {
                        return Err(invalid(format!(
                            "_lastUpdated: prefix {:?} is not supported (eq, ge, gt, le, lt)",
                            &value[..2]
                        )));
                    }
                    _ => ("eq", value.as_str()),
                };
                let (lo, hi) = date_range(date).ok_or_else(|| {
                    invalid(format!(
                        "_lastUpdated: {date:?} is not a FHIR date or dateTime"
                    ))
                })?;
                match prefix {
                    "eq" => s.push(
                        "updated_at_us >= {} AND updated_at_us < {}",
                        vec![Arg::Int(lo), Arg::Int(hi)],
                    ),
                    "ge" => s.push("updated_at_us >= {}", vec![Arg::Int(lo)]),
                    "gt" => s.push("updated_at_us >= {}", vec![Arg::Int(hi)]),
                    "le" => s.push("updated_at_us < {}", vec![Arg::Int(hi)]),
                    _ => s.push("updated_at_us < {}", vec![Arg::Int(lo)]),
                }
            }
            (ResourceType::Practitioner, "identifier") => match token(value) {
                (Some(NATIONAL_ID_SYSTEM), v) => {
                    s.push("national_id = {}", vec![Arg::owned(v.to_string())])
                }
                (Some(RPPS_SYSTEM), v) => s.push(
                    "id_kind = '8' AND identifier = {}",
                    vec![Arg::owned(v.to_string())],
                ),
                (None | Some(""), v) => s.push(
                    "(national_id = {} OR identifier = {})",
                    vec![Arg::owned(v.to_string()), Arg::owned(v.to_string())],
                ),
                (Some(_), _) => s.push("1 = 0", vec![]),
            },
            (ResourceType::Organization, "identifier") => match token(value) {
                (Some(FINESS_SYSTEM), v) => s.push(
                    "(finess_site = {} OR finess_legal = {})",
                    vec![Arg::owned(v.to_string()), Arg::owned(v.to_string())],
                ),
                (Some(SIRET_SYSTEM), v) => s.push("siret = {}", vec![Arg::owned(v.to_string())]),
                (Some(STRUCTURE_ID_SYSTEM), v) => {
                    s.push("structure_id = {}", vec![Arg::owned(v.to_string())])
                }
                (None | Some(""), v) => s.push(
                    "(structure_id = {} OR finess_site = {} OR finess_legal = {} OR siret = {})",
                    vec![
                        Arg::owned(v.to_string()),
                        Arg::owned(v.to_string()),
                        Arg::owned(v.to_string()),
                        Arg::owned(v.to_string()),
                    ],
                ),
                (Some(_), _) => s.push("1 = 0", vec![]),
            },
            (_, "name" | "family" | "given") => {
                let columns: &[(&str, &str)] = match (rt, name) {
                    (ResourceType::Organization, _) => &[("name", "name_fold")],
                    (_, "family") => &[("family_name", "family_fold")],
                    (_, "given") => &[("given_name", "given_fold")],
                    _ => &[("family_name", "family_fold"), ("given_name", "given_fold")],
                };
                let mut alternatives = Vec::new();
                let mut args = Vec::new();
                for (raw, folded) in columns {
                    match modifier {
                        Some("exact") => {
                            alternatives.push(format!("{raw} = {{}}"));
                            args.push(Arg::owned(value.clone()));
                        }
                        Some("contains") => {
                            alternatives.push(format!("{folded} LIKE {{}} ESCAPE '\\'"));
                            args.push(Arg::owned(format!("%{}%", escape_like(&fold(value)))));
                        }
                        _ => {
                            // Start of the name or of any word in it ("gall" finds "LE GALL").
                            alternatives.push(format!(
                                "({folded} LIKE {{}} ESCAPE '\\' OR {folded} LIKE {{}} ESCAPE '\\')"
                            ));
                            let v = escape_like(&fold(value));
                            args.push(Arg::owned(format!("{v}%")));
                            args.push(Arg::owned(format!("% {v}%")));
                        }
                    }
                }
                s.push(&format!("({})", alternatives.join(" OR ")), args);
            }
            (ResourceType::PractitionerRole, "practitioner") => s.push(
                "national_id = {}",
                vec![Arg::owned(reference(value, "Practitioner").to_string())],
            ),
            (ResourceType::PractitionerRole, "organization") => s.push(
                "structure_id = {}",
                vec![Arg::owned(reference(value, "Organization").to_string())],
            ),
            (ResourceType::PractitionerRole, "role") => match token(value) {
                (None | Some(PROFESSION_SYSTEM), v) => {
                    s.push("profession_code = {}", vec![Arg::owned(v.to_string())])
                }
                _ => s.push("1 = 0", vec![]),
            },
            (ResourceType::PractitionerRole, "specialty") => match token(value) {
                (None | Some(SPECIALTY_SYSTEM), v) => {
                    s.push("specialty_code = {}", vec![Arg::owned(v.to_string())])
                }
                _ => s.push("1 = 0", vec![]),
            },
            _ => unreachable!("every supported parameter is handled"),
        }
    }
    Ok(s)
}

/// Percent-encodes a query component (RFC 3986 unreserved characters kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn page_url(
    base: &str,
    rt: ResourceType,
    echo: &[(String, String)],
    count: usize,
    offset: usize,
) -> String {
    let mut url = format!("{base}/{}?", rt.name());
    for (k, v) in echo {
        url.push_str(&format!("{}={}&", encode(k), encode(v)));
    }
    url.push_str(&format!("_count={count}&_offset={offset}"));
    url
}

/// Runs a search and returns a `searchset` Bundle with absolute URLs under `base` (the public
/// URL of the FHIR endpoint, e.g. `https://sante.bzh/fhir`).
pub async fn search(
    db: &Database,
    rt: ResourceType,
    params: &[(String, String)],
    base: &str,
) -> Result<Value> {
    let s = parse_search(rt, params)?;
    let table = rt.table();
    let filter = if s.conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", s.conditions.join(" AND "))
    };
    let count_sql = format!("SELECT COUNT(*) FROM {}{filter}", table.name);
    let total: i64 = with_pool!(db, pool =>
        bind_args!(sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql)), &s.args)
            .fetch_one(pool).await)?;
    let total = total as usize;
    let mut records = Vec::new();
    if s.count > 0 && s.offset < total {
        let n = s.args.len();
        let sql = format!(
            "SELECT {} FROM {}{filter} ORDER BY {} LIMIT ${} OFFSET ${}",
            select_list(table),
            table.name,
            table.key,
            n + 1,
            n + 2
        );
        let mut args = s.args.clone();
        args.push(Arg::Int(s.count as i64));
        args.push(Arg::Int(s.offset as i64));
        records = fetch(db, table, sql, &args).await?;
    }
    let mut links = vec![
        json!({"relation": "self", "url": page_url(base, rt, &s.echo, s.count, s.offset)}),
        json!({"relation": "first", "url": page_url(base, rt, &s.echo, s.count, 0)}),
    ];
    if s.offset > 0 && s.count > 0 {
        let previous = s.offset.saturating_sub(s.count);
        links.push(
            json!({"relation": "previous", "url": page_url(base, rt, &s.echo, s.count, previous)}),
        );
    }
    if s.count > 0 && s.offset + s.count < total {
        links.push(json!({"relation": "next",
            "url": page_url(base, rt, &s.echo, s.count, s.offset + s.count)}));
    }
    let entries: Vec<Value> = records
        .iter()
        .map(|r| {
            let resource = to_resource(rt, r);
            json!({
                "fullUrl": format!("{base}/{}/{}", rt.name(), resource["id"].as_str().unwrap_or_default()),
                "resource": resource,
                "search": {"mode": "match"},
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
    });
    if !entries.is_empty() {
        bundle["entry"] = json!(entries);
    }
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unsupported_parameters_and_modifiers_are_refused() {
        let cases: &[(ResourceType, (&str, &str), &str)] = &[
            (
                ResourceType::Practitioner,
                ("birthdate", "2000"),
                "not supported on Practitioner",
            ),
            (
                ResourceType::Organization,
                ("family", "x"),
                "not supported on Organization",
            ),
            (
                ResourceType::Practitioner,
                ("active", "yes"),
                "true or false",
            ),
            (
                ResourceType::Practitioner,
                ("_count", "-1"),
                "non-negative integer",
            ),
            (
                ResourceType::Practitioner,
                ("identifier:text", "x"),
                "modifier :text",
            ),
            (
                ResourceType::Practitioner,
                ("_lastUpdated", "ne2024-01-01"),
                "prefix",
            ),
            (
                ResourceType::Practitioner,
                ("_lastUpdated", "2024-13-01"),
                "not a FHIR date",
            ),
            (
                ResourceType::PractitionerRole,
                ("specialty", "SM54,SM04"),
                "lists of values",
            ),
            (ResourceType::Practitioner, ("name", ""), "no value"),
        ];
        for (rt, (k, v), expected) in cases {
            match parse_search(*rt, &params(&[(k, v)])) {
                Err(DirectoryError::InvalidSearch(m)) => {
                    assert!(m.contains(expected), "{k}={v}: {m}")
                }
                Err(e) => panic!("{k}={v}: unexpected error {e}"),
                Ok(_) => panic!("{k}={v}: accepted"),
            }
        }
    }

    #[test]
    fn values_only_ever_become_bound_arguments() {
        let s = parse_search(
            ResourceType::Practitioner,
            &params(&[("family", "x' OR 1=1 --"), ("identifier", "a' OR '1'='1")]),
        )
        .unwrap();
        let sql = s.conditions.join(" AND ");
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert!(!sql.contains("'1'"), "{sql}");
        assert_eq!(s.args.len(), 4);
    }

    #[test]
    fn dates_cover_their_precision() {
        let day = date_range("2024-02-28").unwrap();
        assert_eq!(day.1 - day.0, 86_400_000_000);
        let month = date_range("2024-02").unwrap();
        assert_eq!(month.1 - month.0, 29 * 86_400_000_000);
        let year = date_range("2024").unwrap();
        assert_eq!(year.1 - year.0, 366 * 86_400_000_000);
        let instant = date_range("2024-02-28T10:00:00+01:00").unwrap();
        assert_eq!(instant.1 - instant.0, 1_000_000);
        assert!(date_range("20240228").is_none());
        assert!(date_range("2024-02-30").is_none());
    }

    #[test]
    fn paging_links_encode_parameters() {
        let url = page_url(
            "https://x/fhir",
            ResourceType::Practitioner,
            &[("name".into(), "le gall&x=1".into())],
            10,
            20,
        );
        assert_eq!(
            url,
            "https://x/fhir/Practitioner?name=le%20gall%26x%3D1&_count=10&_offset=20"
        );
    }

    #[test]
    fn the_capability_lists_every_search_parameter() {
        let resources = capability_resources();
        assert_eq!(resources.len(), 3);
        let practitioner = &resources[0];
        let names: Vec<&str> = practitioner["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for n in [
            "identifier",
            "name",
            "family",
            "given",
            "active",
            "_lastUpdated",
            "_count",
        ] {
            assert!(names.contains(&n), "{n} missing");
        }
    }
}
