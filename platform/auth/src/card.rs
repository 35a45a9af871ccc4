//! Login with a CPS smart card, and the one-time tickets that carry a login from the
//! mutual-TLS listener to the portal.
//!
//! The server's mutual-TLS listener checks the card certificate (chain to the IGC-Santé trust
//! bundle, validity, revocation list); this module starts from the national id the certificate
//! names. A card is strong authentication on its own (possession of the card and knowledge of
//! its PIN), so the session it opens counts as second factor.

use megalis_store::{Database, with_pool};

use crate::account::{self, Account, AccountKind, NewAccount};
use crate::crypto::{random_token, token_hash};
use crate::directory::PractitionerInfo;
use crate::{AuthError, Result, now_us};

/// How long a ticket may wait between the card listener and the portal: one redirect.
pub const TICKET_LIFETIME_US: i64 = 60_000_000;

/// RFC 8176 method of a card login: `sc` (smart card) and `pin` (the card's PIN unlocked the key).
pub const CARD_AMR: &[&str] = &["sc", "pin"];

/// Why a login by national id (a verified card, or an upstream provider's assertion) opens no
/// session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NationalIdRefusal {
    /// No active practitioner has this national id (unknown, or closed in the directory).
    UnknownPractitioner,
    /// The practitioner's account exists and an administrator disabled it.
    Disabled,
}

impl NationalIdRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            NationalIdRefusal::UnknownPractitioner => {
                "no active practitioner with this national id"
            }
            NationalIdRefusal::Disabled => "account disabled",
        }
    }
}

/// The account a card holder logs into. A practitioner active in the directory who has never
/// logged in gets a card-only professional account (no password; user name = national id):
/// being in the directory is what "known" means for a card holder, and application grants still
/// decide what they may open.
pub(crate) async fn account_for_practitioner(
    db: &Database,
    practitioner: &PractitionerInfo,
) -> Result<(Account, bool)> {
    if let Some(existing) = account::by_national_id(db, &practitioner.national_id).await? {
        return Ok((existing, false));
    }
    let new = NewAccount {
        username: practitioner.national_id.clone(),
        kind: AccountKind::Professional,
        national_id: Some(practitioner.national_id.clone()),
        organisation: practitioner.organisations.first().cloned(),
        display_name: format!("{} {}", practitioner.given_name, practitioner.family_name)
            .trim()
            .to_string(),
        roles: vec![],
        password: None,
    };
    match account::create(db, &new).await {
        Ok(created) => Ok((created, true)),
        // Two first logins at once (two replicas): the other one created it.
        Err(AuthError::Conflict(_)) => account::by_national_id(db, &practitioner.national_id)
            .await?
            .map(|a| (a, false))
            .ok_or_else(|| AuthError::Internal("card account vanished".into())),
        Err(e) => Err(e),
    }
}

/// Issues a ticket for `account`; returns the raw ticket (only its hash is stored).
pub(crate) async fn issue_ticket(db: &Database, account_id: &str, amr: &[&str]) -> Result<String> {
    let raw = random_token();
    let now = now_us();
    with_pool!(db, pool => sqlx::query(
        "INSERT INTO auth_login_ticket (ticket_hash, account_id, amr, expires_at_us) \
         VALUES ($1, $2, $3, $4)")
        .bind(token_hash(&raw)).bind(account_id).bind(amr.join(" "))
        .bind(now + TICKET_LIFETIME_US)
        .execute(pool).await.map(|r| r.rows_affected()))?;
    // Expired tickets are swept here rather than by a timer: issuing is rare (card logins).
    with_pool!(db, pool => sqlx::query("DELETE FROM auth_login_ticket WHERE expires_at_us < $1")
        .bind(now).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(raw)
}

/// Redeems a ticket once: the row is deleted in the same statement that reads it, so a replayed
/// ticket (or two replicas racing) finds nothing. Returns the account id and methods.
pub(crate) async fn redeem_ticket(
    db: &Database,
    raw: &str,
) -> Result<Option<(String, Vec<String>)>> {
    let row: Option<(String, String, i64)> = with_pool!(db, pool => sqlx::query_as(
        "DELETE FROM auth_login_ticket WHERE ticket_hash = $1 \
         RETURNING account_id, amr, expires_at_us")
        .bind(token_hash(raw)).fetch_optional(pool).await)?;
    Ok(row.and_then(|(account, amr, expires)| {
        (expires >= now_us()).then(|| {
            (
                account,
                amr.split_whitespace().map(str::to_string).collect(),
            )
        })
    }))
}
