//! Per-application authorisation: which principals may use which application (a plugin or a
//! registered OIDC client). A grant is a rule "application A is open to professions P / the
//! specialty S / organisation O / role R / the individual I / everyone"; a principal matching any
//! rule of the application may use it. No rule: nobody (deny by default).
//!
//! [`allowed`] is pure; the server calls it at single sign-on time and on every request.

use std::collections::HashMap;

use megalis_store::{Database, with_pool};

use crate::principal::{Principal, PrincipalKind};
use crate::{AuthError, Result, now_us};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantKind {
    /// TRE_G15 profession code (10 = médecin).
    Profession,
    /// TRE_R38 specialty code.
    Specialty,
    /// FINESS/SIRET of an organisation.
    Organisation,
    /// A platform role (`admin`, `secretariat`, `dpo`…).
    Role,
    /// One person: account id or national id.
    Individual,
    /// Every authenticated user.
    Everyone,
}

impl GrantKind {
    pub const ALL: [GrantKind; 6] = [
        GrantKind::Profession,
        GrantKind::Specialty,
        GrantKind::Organisation,
        GrantKind::Role,
        GrantKind::Individual,
        GrantKind::Everyone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::Profession => "profession",
            GrantKind::Specialty => "specialty",
            GrantKind::Organisation => "organisation",
            GrantKind::Role => "role",
            GrantKind::Individual => "individual",
            GrantKind::Everyone => "everyone",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        GrantKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct GrantRule {
    pub application: String,
    pub kind: GrantKind,
    /// Empty for [`GrantKind::Everyone`].
    pub value: String,
}

/// Whether one rule admits the principal.
pub fn matches(rule: &GrantRule, p: &Principal) -> bool {
    let v = rule.value.as_str();
    match rule.kind {
        GrantKind::Everyone => true,
        GrantKind::Profession => p.profession.as_deref() == Some(v),
        GrantKind::Specialty => p.specialty.as_deref() == Some(v),
        GrantKind::Organisation => p.organisations.iter().any(|o| o == v),
        GrantKind::Role => p.roles.iter().any(|r| r == v),
        GrantKind::Individual => p.subject == v || p.national_id.as_deref() == Some(v),
    }
}

/// May this principal use this application, given all the rules of that application?
/// Users need a matching rule; a system client may use only itself (its own application);
/// anonymous callers never.
pub fn allowed(rules: &[GrantRule], application: &str, p: &Principal) -> bool {
    match p.kind {
        PrincipalKind::Anonymous => false,
        PrincipalKind::System => p.client_id.as_deref() == Some(application),
        PrincipalKind::User => rules
            .iter()
            .filter(|r| r.application == application)
            .any(|r| matches(r, p)),
    }
}

/// Every rule, grouped by application (the cache the service keeps).
pub async fn load_all(db: &Database) -> Result<HashMap<String, Vec<GrantRule>>> {
    let rows: Vec<(String, String, String)> = with_pool!(db, pool => sqlx::query_as(
        "SELECT application_id, kind, value FROM auth_grant ORDER BY application_id, kind, value")
        .fetch_all(pool).await)?;
    let mut out: HashMap<String, Vec<GrantRule>> = HashMap::new();
    for (application, kind, value) in rows {
        if let Some(kind) = GrantKind::parse(&kind) {
            out.entry(application.clone()).or_default().push(GrantRule {
                application,
                kind,
                value,
            });
        }
    }
    Ok(out)
}

pub async fn add(db: &Database, rule: &GrantRule) -> Result<bool> {
    if rule.kind != GrantKind::Everyone && rule.value.trim().is_empty() {
        return Err(AuthError::Invalid(format!(
            "a {} grant needs a value",
            rule.kind.as_str()
        )));
    }
    let value = if rule.kind == GrantKind::Everyone {
        ""
    } else {
        rule.value.trim()
    };
    let n = with_pool!(db, pool => sqlx::query(
        "INSERT INTO auth_grant (application_id, kind, value, created_at_us) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (application_id, kind, value) DO NOTHING")
        .bind(&rule.application).bind(rule.kind.as_str()).bind(value).bind(now_us())
        .execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn remove(db: &Database, rule: &GrantRule) -> Result<bool> {
    let n = with_pool!(db, pool => sqlx::query(
        "DELETE FROM auth_grant WHERE application_id = $1 AND kind = $2 AND value = $3")
        .bind(&rule.application).bind(rule.kind.as_str()).bind(rule.value.trim())
        .execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// An application the launcher may show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Application {
    pub id: String,
    pub name: String,
    pub launch_url: Option<String>,
}

pub async fn register_application(db: &Database, app: &Application) -> Result<()> {
    with_pool!(db, pool => sqlx::query(
        "INSERT INTO auth_application (id, name, launch_url) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET name = $2, launch_url = $3")
        .bind(&app.id).bind(&app.name).bind(&app.launch_url).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn applications(db: &Database) -> Result<Vec<Application>> {
    let rows: Vec<(String, String, Option<String>)> = with_pool!(db, pool => sqlx::query_as(
        "SELECT id, name, launch_url FROM auth_application ORDER BY name")
        .fetch_all(pool).await)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, launch_url)| Application {
            id,
            name,
            launch_url,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Principal {
        Principal {
            kind: PrincipalKind::User,
            subject: "acc1".into(),
            national_id: Some("810001234567".into()),
            profession: Some("10".into()),
            specialty: Some("SM54".into()),
            organisations: vec!["350000139".into()],
            roles: vec!["clinician".into()],
            ..Principal::anonymous()
        }
    }

    fn rule(kind: GrantKind, value: &str) -> GrantRule {
        GrantRule {
            application: "breizh-rein".into(),
            kind,
            value: value.into(),
        }
    }

    #[test]
    fn rules_table() {
        let p = user();
        let cases = [
            (rule(GrantKind::Everyone, ""), true),
            (rule(GrantKind::Profession, "10"), true),
            (rule(GrantKind::Profession, "40"), false),
            (rule(GrantKind::Specialty, "SM54"), true),
            (rule(GrantKind::Specialty, "SM26"), false),
            (rule(GrantKind::Organisation, "350000139"), true),
            (rule(GrantKind::Organisation, "290000017"), false),
            (rule(GrantKind::Role, "clinician"), true),
            (rule(GrantKind::Role, "admin"), false),
            (rule(GrantKind::Individual, "acc1"), true),
            (rule(GrantKind::Individual, "810001234567"), true),
            (rule(GrantKind::Individual, "810009999999"), false),
        ];
        for (r, expected) in cases {
            assert_eq!(matches(&r, &p), expected, "{r:?}");
            assert_eq!(
                allowed(std::slice::from_ref(&r), "breizh-rein", &p),
                expected
            );
            // A rule of another application never opens this one.
            assert!(!allowed(&[r], "imaging", &p));
        }
    }

    #[test]
    fn deny_by_default_and_by_kind() {
        let everyone = [rule(GrantKind::Everyone, "")];
        assert!(!allowed(&[], "breizh-rein", &user()), "no rule, no access");
        assert!(!allowed(&everyone, "breizh-rein", &Principal::anonymous()));
        let system = Principal {
            kind: PrincipalKind::System,
            subject: "sih-chu-rennes".into(),
            client_id: Some("sih-chu-rennes".into()),
            ..Principal::anonymous()
        };
        assert!(allowed(&[], "sih-chu-rennes", &system));
        assert!(!allowed(&everyone, "breizh-rein", &system));
    }
}
