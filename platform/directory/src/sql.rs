//! SQL plumbing shared by the import and the queries: bound arguments (never interpolated
//! values), table descriptors, and the content hash.

use std::borrow::Cow;

/// One bound parameter. Statements are built with `$n` placeholders only; values always travel
/// as parameters, so no input ever becomes SQL.
#[derive(Debug, Clone)]
pub enum Arg<'a> {
    Text(Cow<'a, str>),
    OptText(Option<Cow<'a, str>>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
}

impl<'a> Arg<'a> {
    pub fn text(s: &'a str) -> Self {
        Arg::Text(Cow::Borrowed(s))
    }
    pub fn owned(s: String) -> Self {
        Arg::Text(Cow::Owned(s))
    }
    pub fn opt(s: Option<&'a str>) -> Self {
        Arg::OptText(s.map(Cow::Borrowed))
    }
}

/// Binds a slice of [`Arg`] to a query; used inside `with_pool!` so it compiles for each backend.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                $crate::sql::Arg::Text(s) => q.bind(s.as_ref()),
                $crate::sql::Arg::OptText(s) => q.bind(s.as_deref()),
                $crate::sql::Arg::Int(i) => q.bind(*i),
                $crate::sql::Arg::OptInt(i) => q.bind(*i),
                $crate::sql::Arg::Bool(b) => q.bind(*b),
            };
        }
        q
    }};
}
pub(crate) use bind_args;

/// Most parameters in one statement on PostgreSQL (its limit is 65,535).
pub const MAX_PARAMS: usize = 30_000;

/// Most parameters in one statement for a backend. SQLite statements use anonymous `?`
/// placeholders only: the driver looks each parameter up by name when binding, and SQLite finds
/// a name (`$n`) by a linear scan, so binding `$1…$999` cost a quadratic 31% of the whole import
/// in a profile; with `?` there is no name to scan.
pub fn max_params(backend: megalis_store::Backend) -> usize {
    match backend {
        megalis_store::Backend::Sqlite => 999,
        megalis_store::Backend::Postgres => MAX_PARAMS,
    }
}

/// Content hash of an entity: the first 8 bytes of SHA-256 over its content columns, each
/// length-prefixed (and `None` told apart from an empty string).
pub fn content_hash(args: &[Arg<'_>]) -> i64 {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for a in args {
        match a {
            Arg::Text(s) => {
                ctx.update(&[1]);
                ctx.update(&(s.len() as u64).to_be_bytes());
                ctx.update(s.as_bytes());
            }
            Arg::OptText(None) => ctx.update(&[0]),
            Arg::OptText(Some(s)) => {
                ctx.update(&[1]);
                ctx.update(&(s.len() as u64).to_be_bytes());
                ctx.update(s.as_bytes());
            }
            Arg::Int(i) => {
                ctx.update(&[2]);
                ctx.update(&i.to_be_bytes());
            }
            Arg::OptInt(None) => ctx.update(&[0]),
            Arg::OptInt(Some(i)) => {
                ctx.update(&[2]);
                ctx.update(&i.to_be_bytes());
            }
            Arg::Bool(b) => ctx.update(&[3, u8::from(*b)]),
        }
    }
    let d = ctx.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d.as_ref()[..8]);
    i64::from_be_bytes(first)
}

/// A directory table: its key and the content columns (the key first) that the file defines.
pub struct Table {
    pub name: &'static str,
    pub key: &'static str,
    pub content: &'static [&'static str],
    /// FHIR resource type and audit object type.
    pub resource: &'static str,
    /// Audit action prefix (`practitioner.close`…).
    pub action: &'static str,
}

/// Columns every table has after its content, in this order.
pub const STATE_COLUMNS: [&str; 6] = [
    "content_hash",
    "active",
    "created_at_us",
    "updated_at_us",
    "closed_at_us",
    "last_seen_import",
];

pub const PRACTITIONER: Table = Table {
    name: "dir_practitioner",
    key: "national_id",
    content: &[
        "national_id",
        "id_kind",
        "identifier",
        "practice_civility_code",
        "practice_civility_label",
        "civility_code",
        "civility_label",
        "family_name",
        "given_name",
        "family_fold",
        "given_fold",
        "profession_code",
        "profession_label",
        "category_code",
        "category_label",
        "mssante_address",
    ],
    resource: "Practitioner",
    action: "practitioner",
};

pub const ORGANISATION: Table = Table {
    name: "dir_organisation",
    key: "structure_id",
    content: &[
        "structure_id",
        "siret",
        "siren",
        "finess_site",
        "finess_legal",
        "name",
        "name_fold",
        "trade_name",
        "address_lines",
        "district",
        "postal_code",
        "commune_code",
        "city",
        "country_code",
        "country",
        "phone",
        "phone2",
        "fax",
        "email",
        "department_code",
        "department_label",
        "sector_code",
        "sector_label",
    ],
    resource: "Organization",
    action: "organisation",
};

pub const ACTIVITY: Table = Table {
    name: "dir_activity",
    key: "activity_id",
    content: &[
        "activity_id",
        "national_id",
        "structure_id",
        "profession_code",
        "profession_label",
        "specialty_kind_code",
        "specialty_kind_label",
        "specialty_code",
        "specialty_label",
        "mode_code",
        "mode_label",
        "pharmacist_section_code",
        "pharmacist_section_label",
        "registration_authority",
    ],
    resource: "PractitionerRole",
    action: "practitioner_role",
};

impl Table {
    /// Every column written by the import: content then state.
    fn columns(&self) -> Vec<&'static str> {
        self.content
            .iter()
            .copied()
            .chain(STATE_COLUMNS.iter().copied())
            .collect()
    }

    /// `ON CONFLICT (key) DO UPDATE SET c = excluded.c, …`: every column but the key and the
    /// creation time, which an existing row keeps.
    fn on_conflict_update(&self) -> String {
        let sets: Vec<String> = self
            .columns()
            .iter()
            .filter(|c| **c != self.key && **c != "created_at_us")
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        format!(
            " ON CONFLICT ({}) DO UPDATE SET {}",
            self.key,
            sets.join(", ")
        )
    }

    /// SQLite: `INSERT … VALUES (?,…),(?,…) ON CONFLICT (key) DO UPDATE SET …` for `rows`
    /// entities.
    pub fn upsert_sql(&self, rows: usize) -> String {
        let columns = self.columns();
        let mut sql = format!("INSERT INTO {} ({}) VALUES ", self.name, columns.join(", "));
        placeholders(&mut sql, rows, columns.len());
        sql.push_str(&self.on_conflict_update());
        sql
    }

    /// PostgreSQL: the same upsert with one array parameter per column, unnested into rows.
    pub fn upsert_unnest_sql(&self) -> String {
        let columns = self.columns();
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::{}[]", i + 1, pg_type(c)))
            .collect();
        format!(
            "INSERT INTO {} ({}) SELECT * FROM UNNEST({}){}",
            self.name,
            columns.join(", "),
            arrays.join(", "),
            self.on_conflict_update()
        )
    }

    pub fn width(&self) -> usize {
        self.content.len() + STATE_COLUMNS.len()
    }
}

/// The PostgreSQL type of a column: the state columns are numbers and a flag, content is text.
fn pg_type(column: &str) -> &'static str {
    match column {
        "active" => "boolean",
        c if STATE_COLUMNS.contains(&c) => "bigint",
        _ => "text",
    }
}

/// Appends `(?,…),(?,…)`: `rows` tuples of `width` anonymous placeholders (SQLite).
pub fn placeholders(sql: &mut String, rows: usize, width: usize) {
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push(',');
            }
            sql.push('?');
        }
        sql.push(')');
    }
}

/// `?,?,…` for a SQLite `IN (…)` list of `n` values.
pub fn in_list(n: usize) -> String {
    let mut s = "?,".repeat(n);
    s.pop();
    s
}

/// Escapes `%`, `_` and the escape character itself for a `LIKE … ESCAPE '\'` pattern.
pub fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tells_none_from_empty_and_order_matters() {
        let a = content_hash(&[Arg::opt(None), Arg::text("x")]);
        let b = content_hash(&[Arg::opt(Some("")), Arg::text("x")]);
        let c = content_hash(&[Arg::text("x"), Arg::opt(None)]);
        let d = content_hash(&[Arg::text("ab"), Arg::text("c")]);
        let e = content_hash(&[Arg::text("a"), Arg::text("bc")]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(d, e);
        assert_eq!(a, content_hash(&[Arg::opt(None), Arg::text("x")]));
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_a\\"), "50\\%\\_a\\\\");
    }

    #[test]
    fn upsert_keeps_the_creation_time() {
        let sql = PRACTITIONER.upsert_sql(2);
        assert!(sql.contains("ON CONFLICT (national_id) DO UPDATE SET"));
        assert!(!sql.contains("created_at_us = excluded"));
        assert_eq!(sql.matches('?').count(), 2 * PRACTITIONER.width());
        assert!(!sql.contains('$'), "anonymous placeholders only: {sql}");
        let sql = PRACTITIONER.upsert_unnest_sql();
        assert!(sql.contains(&format!("${}::bigint[]", PRACTITIONER.width())));
        assert!(sql.contains("$1::text[]") && sql.contains("::boolean[]"));
        assert!(!sql.contains("created_at_us = excluded"));
        assert_eq!(in_list(3), "?,?,?");
    }
}
