//! The shared revocation and closure list. Entries are rows of `auth_revocation`; every replica
//! keeps them in memory and reads new rows (by sequence number) every second, and applies its own
//! revocations at once, so token validation costs a hash lookup, not a query.
//!
//! Kinds: `jti` (one access token), `account` and `national_id` (a disabled account, a closed
//! practitioner: every token issued before the entry), `client` (a revoked client).

use std::collections::{HashMap, HashSet};

use megalis_store::{Database, with_pool};

use crate::{Result, now_us};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jti,
    Account,
    NationalId,
    Client,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Jti => "jti",
            Kind::Account => "account",
            Kind::NationalId => "national_id",
            Kind::Client => "client",
        }
    }
}

#[derive(Debug, Default)]
pub struct RevocationList {
    last_seq: i64,
    jtis: HashSet<String>,
    /// Value → time of the latest entry: tokens issued at or before it are refused.
    accounts: HashMap<String, i64>,
    national_ids: HashMap<String, i64>,
    clients: HashMap<String, i64>,
}

/// The facts of a token the list is checked against.
pub struct TokenFacts<'a> {
    pub jti: &'a str,
    pub family: Option<&'a str>,
    pub subject: &'a str,
    pub national_id: Option<&'a str>,
    pub client_id: &'a str,
    pub issued_at_s: i64,
}

impl RevocationList {
    fn apply(&mut self, kind: &str, value: String, at_us: i64) {
        let at_s = at_us / 1_000_000;
        let bump = |m: &mut HashMap<String, i64>, v: String| {
            let e = m.entry(v).or_insert(at_s);
            *e = (*e).max(at_s);
        };
        match kind {
            "jti" => {
                self.jtis.insert(value);
            }
            "account" => bump(&mut self.accounts, value),
            "national_id" => bump(&mut self.national_ids, value),
            "client" => bump(&mut self.clients, value),
            _ => {}
        }
    }

    pub fn is_revoked(&self, t: &TokenFacts<'_>) -> bool {
        let before =
            |m: &HashMap<String, i64>, v: &str| m.get(v).is_some_and(|at| t.issued_at_s <= *at);
        self.jtis.contains(t.jti)
            || t.family.is_some_and(|f| self.jtis.contains(f))
            || before(&self.accounts, t.subject)
            || t.national_id.is_some_and(|n| before(&self.national_ids, n))
            || before(&self.clients, t.client_id)
    }

    /// Reads the entries added since the last call.
    pub async fn refresh(&mut self, db: &Database) -> Result<usize> {
        let rows: Vec<(i64, String, String, i64)> = with_pool!(db, pool => sqlx::query_as(
            "SELECT seq, kind, value, revoked_at_us FROM auth_revocation WHERE seq > $1 ORDER BY seq")
            .bind(self.last_seq).fetch_all(pool).await)?;
        let n = rows.len();
        for (seq, kind, value, at) in rows {
            self.last_seq = self.last_seq.max(seq);
            self.apply(&kind, value, at);
        }
        Ok(n)
    }

    /// Applies an entry made by this replica at once (it is also read back by `refresh`).
    pub fn apply_local(&mut self, kind: Kind, value: &str, at_us: i64) {
        self.apply(kind.as_str(), value.to_string(), at_us);
    }
}

/// Adds an entry; returns its time. `expires_at_us` lets old `jti` entries be purged once the
/// token would have expired anyway.
pub async fn add(
    db: &Database,
    kind: Kind,
    value: &str,
    expires_at_us: Option<i64>,
) -> Result<i64> {
    let now = now_us();
    with_pool!(db, pool => sqlx::query(
        "INSERT INTO auth_revocation (kind, value, revoked_at_us, expires_at_us) VALUES ($1, $2, $3, $4)")
        .bind(kind.as_str()).bind(value).bind(now).bind(expires_at_us).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(iat: i64) -> TokenFacts<'static> {
        TokenFacts {
            jti: "j1",
            family: None,
            subject: "acc1",
            national_id: Some("810001234567"),
            client_id: "app",
            issued_at_s: iat,
        }
    }

    #[test]
    fn entries_refuse_tokens_issued_before_them() {
        let mut list = RevocationList::default();
        assert!(!list.is_revoked(&facts(100)));
        list.apply_local(Kind::NationalId, "810001234567", 200_000_000);
        assert!(list.is_revoked(&facts(100)));
        assert!(list.is_revoked(&facts(200)));
        assert!(
            !list.is_revoked(&facts(201)),
            "a token issued after reopening is fine"
        );
        let mut list = RevocationList::default();
        list.apply_local(Kind::Jti, "j1", 1);
        assert!(list.is_revoked(&facts(5)));
        let mut list = RevocationList::default();
        list.apply_local(Kind::Client, "app", 300_000_000);
        assert!(list.is_revoked(&facts(299)));
        let mut list = RevocationList::default();
        list.apply_local(Kind::Account, "acc1", 300_000_000);
        assert!(list.is_revoked(&facts(299)));
    }
}
