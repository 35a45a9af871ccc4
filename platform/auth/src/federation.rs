//! Login federated to an upstream OpenID Provider (Pro Santé Connect, the national provider for
//! health professionals): the relying-party side of the authorization code flow with PKCE.
//!
//! Here is what needs no network: the state kept between the redirect and the callback (in the
//! database, so the callback may reach any replica), and the checks of the ID token (signature
//! against the provider's JWKS, issuer, audience, expiry, nonce, the required `acr`, and the
//! national id claim). The server crate fetches the provider's metadata and talks to it.

pub use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use megalis_store::{Database, with_pool};
use serde_json::Value;

use crate::crypto::{pkce_s256, random_token, token_hash};
use crate::{Result, now_us};

/// How long a user may spend at the provider (login, card PIN, e-CPS app) before the callback.
pub const STATE_LIFETIME_US: i64 = 600_000_000;

/// What the redirect to the provider carries.
#[derive(Debug, Clone)]
pub struct AuthorizationStart {
    pub state: String,
    pub nonce: String,
    /// PKCE S256 challenge of the verifier kept in the database.
    pub code_challenge: String,
}

/// What the callback gets back from the stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    pub code_verifier: String,
    pub nonce: String,
    /// The local path to return to after login.
    pub next: String,
}

/// Stores a new authorization request; returns what goes into the redirect.
pub async fn begin(db: &Database, next: &str) -> Result<AuthorizationStart> {
    let (state, nonce, verifier) = (random_token(), random_token(), random_token());
    let now = now_us();
    with_pool!(db, pool => sqlx::query(
        "INSERT INTO auth_federation_state (state_hash, code_verifier, nonce, next_path, \
         expires_at_us) VALUES ($1, $2, $3, $4, $5)")
        .bind(token_hash(&state)).bind(&verifier).bind(&nonce).bind(next)
        .bind(now + STATE_LIFETIME_US)
        .execute(pool).await.map(|r| r.rows_affected()))?;
    with_pool!(db, pool => sqlx::query("DELETE FROM auth_federation_state WHERE expires_at_us < $1")
        .bind(now).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(AuthorizationStart {
        code_challenge: pkce_s256(&verifier),
        state,
        nonce,
    })
}

/// Takes the state of a callback, once: a replayed or forged `state` finds nothing.
pub async fn redeem(db: &Database, state: &str) -> Result<Option<PendingAuthorization>> {
    let row: Option<(String, String, String, i64)> = with_pool!(db, pool => sqlx::query_as(
        "DELETE FROM auth_federation_state WHERE state_hash = $1 \
         RETURNING code_verifier, nonce, next_path, expires_at_us")
        .bind(token_hash(state)).fetch_optional(pool).await)?;
    Ok(row.and_then(|(code_verifier, nonce, next, expires)| {
        (expires >= now_us()).then_some(PendingAuthorization {
            code_verifier,
            nonce,
            next,
        })
    }))
}

/// Why the provider's answer is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FederationProblem {
    /// Malformed token, unknown key, bad signature, or an algorithm we do not accept.
    BadSignature(String),
    WrongIssuer,
    WrongAudience,
    Expired,
    NonceMismatch,
    /// The authentication was weaker than required (e.g. not `eidas1`).
    InsufficientAcr(Option<String>),
    /// Neither the ID token nor `/userinfo` holds a national id (`8` + RPPS).
    NoNationalId,
}

impl FederationProblem {
    pub fn code(&self) -> String {
        match self {
            FederationProblem::BadSignature(why) => format!("ID token signature: {why}"),
            FederationProblem::WrongIssuer => "ID token issuer".into(),
            FederationProblem::WrongAudience => "ID token audience".into(),
            FederationProblem::Expired => "ID token expired".into(),
            FederationProblem::NonceMismatch => "ID token nonce".into(),
            FederationProblem::InsufficientAcr(acr) => {
                format!(
                    "acr {} is not the required level",
                    acr.as_deref().unwrap_or("(none)")
                )
            }
            FederationProblem::NoNationalId => "no national id claim".into(),
        }
    }
}

/// What the ID token must say.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Required `acr` (Pro Santé Connect: `eidas1`).
    pub acr: &'a str,
    /// The claim holding the national id (Pro Santé Connect: `SubjectNameID`).
    pub national_id_claim: &'a str,
    /// Seconds since the Unix epoch.
    pub now: i64,
}

/// Asymmetric algorithms only: `none` and HMAC (which would let anyone knowing the client
/// secret mint tokens) are refused before any key is looked at.
const ACCEPTED: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Verifies the signature of an ID token against the provider's keys; returns its claims
/// (not yet checked: see [`check_claims`]).
pub fn verify_signature(
    token: &str,
    keys: &JwkSet,
) -> std::result::Result<Value, FederationProblem> {
    let bad = |why: &str| FederationProblem::BadSignature(why.to_string());
    let header = jsonwebtoken::decode_header(token).map_err(|e| bad(&e.to_string()))?;
    if !ACCEPTED.contains(&header.alg) {
        return Err(bad(&format!("algorithm {:?} not accepted", header.alg)));
    }
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        // A provider with a single key may omit kid.
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or_else(|| bad("unknown signing key"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(&e.to_string()))?;
    let mut validation = Validation::new(header.alg);
    // Claims are checked by check_claims, with messages of our own.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| bad(&e.to_string()))
}

/// Checks issuer, audience, expiry (one minute of clock skew), nonce and `acr`; returns the
/// national id when the ID token holds it (`None`: ask `/userinfo`).
pub fn check_claims(
    claims: &Value,
    e: &Expectations<'_>,
) -> std::result::Result<Option<String>, FederationProblem> {
    if claims["iss"].as_str() != Some(e.issuer) {
        return Err(FederationProblem::WrongIssuer);
    }
    let audience_ok = match &claims["aud"] {
        Value::String(a) => a == e.client_id,
        Value::Array(list) => list.iter().any(|a| a.as_str() == Some(e.client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(FederationProblem::WrongAudience);
    }
    match claims["exp"].as_i64() {
        Some(exp) if exp + 60 >= e.now => {}
        _ => return Err(FederationProblem::Expired),
    }
    if claims["nonce"].as_str() != Some(e.nonce) {
        return Err(FederationProblem::NonceMismatch);
    }
    let acr = claims["acr"].as_str();
    if acr != Some(e.acr) {
        return Err(FederationProblem::InsufficientAcr(acr.map(str::to_string)));
    }
    national_id_of(claims, e.national_id_claim)
}

/// The national id in a claims object (ID token or `/userinfo`), if it holds a valid one.
pub fn national_id_of(
    claims: &Value,
    claim: &str,
) -> std::result::Result<Option<String>, FederationProblem> {
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if crate::account::valid_national_id(id.trim()) => {
            Ok(Some(id.trim().to_string()))
        }
        Some(_) => Err(FederationProblem::NoNationalId),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect() -> Expectations<'static> {
        Expectations {
            issuer: "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet",
            client_id: "megalis",
            nonce: "n-1",
            acr: "eidas1",
            national_id_claim: "SubjectNameID",
            now: 1_700_000_000,
        }
    }

    fn good() -> Value {
        json!({
            "iss": "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet",
            "aud": "megalis", "exp": 1_700_000_100, "nonce": "n-1", "acr": "eidas1",
            "SubjectNameID": "810001234567",
        })
    }

    #[test]
    fn each_claim_is_checked() {
        assert_eq!(
            check_claims(&good(), &expect()),
            Ok(Some("810001234567".into()))
        );
        let with = |k: &str, v: Value| {
            let mut c = good();
            c[k] = v;
            check_claims(&c, &expect())
        };
        assert_eq!(
            with("iss", json!("https://evil")),
            Err(FederationProblem::WrongIssuer)
        );
        assert_eq!(
            with("aud", json!("other")),
            Err(FederationProblem::WrongAudience)
        );
        assert_eq!(
            with("aud", json!(["other", "megalis"])),
            Ok(Some("810001234567".into()))
        );
        assert_eq!(
            with("exp", json!(1_699_999_000)),
            Err(FederationProblem::Expired)
        );
        assert_eq!(
            with("nonce", json!("n-2")),
            Err(FederationProblem::NonceMismatch)
        );
        assert_eq!(
            with("acr", json!("eidas0")),
            Err(FederationProblem::InsufficientAcr(Some("eidas0".into())))
        );
        assert_eq!(with("SubjectNameID", Value::Null), Ok(None));
        assert_eq!(
            with("SubjectNameID", json!("Anne")),
            Err(FederationProblem::NoNationalId)
        );
        let mut no_acr = good();
        no_acr.as_object_mut().unwrap().remove("acr");
        assert_eq!(
            check_claims(&no_acr, &expect()),
            Err(FederationProblem::InsufficientAcr(None))
        );
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_refused_before_any_key_lookup() {
        use base64::Engine;
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        let keys = JwkSet { keys: vec![] };
        for alg in ["none", "HS256"] {
            let token = format!("{}.{}.", b64(&json!({"alg": alg})), b64(&good()));
            assert!(
                matches!(
                    verify_signature(&token, &keys),
                    Err(FederationProblem::BadSignature(_))
                ),
                "{alg}"
            );
        }
        assert!(matches!(
            verify_signature("not.a.jwt", &keys),
            Err(FederationProblem::BadSignature(_))
        ));
    }
}
