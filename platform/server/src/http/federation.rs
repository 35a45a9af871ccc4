//! Pro Santé Connect: login federated to the upstream OpenID Provider configured by
//! `oidc.upstream_*`. `GET /auth/psc` redirects to the provider (code flow, PKCE S256, state,
//! nonce, `acr_values`); `GET /auth/psc/callback` exchanges the code, checks the ID token (in
//! `megalis_auth::federation`) and opens a session for the practitioner it names.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use http::StatusCode;
use megalis_audit::Outcome;
use megalis_auth::federation::{self, Expectations, FederationProblem, JwkSet};
use megalis_auth::{FederatedLogin, NationalIdRefusal, Principal, session};
use megalis_config::UpstreamOidc;
use serde::Deserialize;
use tokio::sync::RwLock;

use super::auth_glue::{Audit, account_actor, auth_error};
use super::{ApiError, AppState};

pub fn routes() -> Vec<super::routes::Route> {
    use super::routes::Route;
    vec![
        Route::open("/auth/psc", &["GET"], get(start)),
        Route::open("/auth/psc/callback", &["GET"], get(callback)),
    ]
}

/// The provider's endpoints, from its discovery document.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    userinfo_endpoint: Option<String>,
}

/// The upstream provider: configuration, an HTTP client, and its metadata and keys, fetched at
/// first use (the platform starts even when the provider is unreachable) and kept.
pub struct Upstream {
    config: UpstreamOidc,
    http: reqwest::Client,
    metadata: RwLock<Option<Metadata>>,
    keys: RwLock<JwkSet>,
}

#[derive(Debug)]
enum UpstreamError {
    /// The provider could not be reached or answered nonsense.
    Unreachable(String),
    /// The provider's answer was refused.
    Refused(FederationProblem),
}

impl Upstream {
    pub fn new(config: &UpstreamOidc) -> Result<Self, crate::ServerError> {
        let mut builder = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.extra_ca {
            let pem = std::fs::read(path).map_err(|e| crate::ServerError::Tls {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                crate::ServerError::Tls {
                    path: path.clone(),
                    reason: e.to_string(),
                }
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| crate::ServerError::Fatal(format!("upstream OIDC client: {e}")))?;
        Ok(Upstream {
            config: config.clone(),
            http,
            metadata: RwLock::new(None),
            keys: RwLock::new(JwkSet { keys: vec![] }),
        })
    }

    async fn metadata(&self) -> Result<Metadata, UpstreamError> {
        if let Some(m) = self.metadata.read().await.as_ref() {
            return Ok(m.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer);
        let m: Metadata = self.get_json(&url).await?;
        // OpenID Connect Discovery §4.3: the document must name the issuer we asked.
        if m.issuer.trim_end_matches('/') != self.config.issuer {
            return Err(UpstreamError::Unreachable(format!(
                "discovery names issuer {} instead of {}",
                m.issuer, self.config.issuer
            )));
        }
        *self.metadata.write().await = Some(m.clone());
        Ok(m)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, UpstreamError> {
        let unreachable = |e: reqwest::Error| UpstreamError::Unreachable(format!("{url}: {e}"));
        self.http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unreachable)?
            .json()
            .await
            .map_err(unreachable)
    }

    /// Verifies an ID token, fetching the provider's keys again once if the signing key is new
    /// to us (key rotation).
    async fn verify(
        &self,
        m: &Metadata,
        id_token: &str,
    ) -> Result<serde_json::Value, UpstreamError> {
        let first = federation::verify_signature(id_token, &*self.keys.read().await);
        match first {
            Ok(claims) => Ok(claims),
            Err(_) => {
                let keys: JwkSet = self.get_json(&m.jwks_uri).await?;
                let result = federation::verify_signature(id_token, &keys);
                *self.keys.write().await = keys;
                result.map_err(UpstreamError::Refused)
            }
        }
    }

    fn redirect_uri(public_url: &str) -> String {
        format!("{public_url}/auth/psc/callback")
    }

    /// Code → tokens → checked claims → national id.
    async fn national_id(
        &self,
        public_url: &str,
        code: &str,
        pending: &federation::PendingAuthorization,
    ) -> Result<String, UpstreamError> {
        let m = self.metadata().await?;
        let redirect_uri = Self::redirect_uri(public_url);
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", pending.code_verifier.as_str()),
        ];
        let response = self
            .http
            .post(&m.token_endpoint)
            .basic_auth(
                form_encode(&self.config.client_id),
                Some(form_encode(&self.config.client_secret)),
            )
            .form(&form)
            .send()
            .await
            .map_err(|e| UpstreamError::Unreachable(format!("token endpoint: {e}")))?;
        let status = response.status();
        let tokens: serde_json::Value = response
            .json()
            .await
            .map_err(|e| UpstreamError::Unreachable(format!("token endpoint: {e}")))?;
        if !status.is_success() {
            return Err(UpstreamError::Unreachable(format!(
                "token endpoint answered {status}: {}",
                tokens["error"].as_str().unwrap_or("?")
            )));
        }
        let id_token = tokens["id_token"].as_str().ok_or_else(|| {
            UpstreamError::Unreachable("token endpoint returned no id_token".into())
        })?;
        let claims = self.verify(&m, id_token).await?;
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
        )
        .unwrap_or(i64::MAX);
        let expect = Expectations {
            issuer: &m.issuer,
            client_id: &self.config.client_id,
            nonce: &pending.nonce,
            acr: &self.config.acr,
            national_id_claim: &self.config.national_id_claim,
            now,
        };
        if let Some(id) =
            federation::check_claims(&claims, &expect).map_err(UpstreamError::Refused)?
        {
            return Ok(id);
        }
        // Pro Santé Connect puts SubjectNameID in /userinfo rather than in the ID token.
        let (Some(userinfo), Some(access_token)) =
            (&m.userinfo_endpoint, tokens["access_token"].as_str())
        else {
            return Err(UpstreamError::Refused(FederationProblem::NoNationalId));
        };
        let info: serde_json::Value = self
            .http
            .get(userinfo)
            .bearer_auth(access_token)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| UpstreamError::Unreachable(format!("userinfo: {e}")))?
            .json()
            .await
            .map_err(|e| UpstreamError::Unreachable(format!("userinfo: {e}")))?;
        // OIDC Core §5.3.2: the userinfo subject must be the ID token's.
        if info["sub"] != claims["sub"] {
            return Err(UpstreamError::Refused(FederationProblem::NoNationalId));
        }
        federation::national_id_of(&info, &self.config.national_id_claim)
            .map_err(UpstreamError::Refused)?
            .ok_or(UpstreamError::Refused(FederationProblem::NoNationalId))
    }
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before HTTP Basic.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Deserialize, Default)]
struct StartQuery {
    next: Option<String>,
}

fn not_configured() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "La connexion par Pro Santé Connect n'est pas configurée sur cette plateforme ; connectez-vous par mot de passe ou carte CPS. / Pro Santé Connect login is not configured on this platform.",
    )
}

async fn start(
    State(state): State<AppState>,
    Query(q): Query<StartQuery>,
) -> Result<Response, ApiError> {
    let Some(upstream) = &state.upstream_oidc else {
        return Err(not_configured());
    };
    let m = upstream.metadata().await.map_err(unreachable)?;
    let next = super::portal::safe_next(q.next.as_deref());
    let begun = federation::begin(&state.db, &next)
        .await
        .map_err(auth_error)?;
    let c = &upstream.config;
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &c.client_id)
        .append_pair(
            "redirect_uri",
            &Upstream::redirect_uri(&state.settings.public_url),
        )
        .append_pair("scope", &c.scope)
        .append_pair("state", &begun.state)
        .append_pair("nonce", &begun.nonce)
        .append_pair("code_challenge", &begun.code_challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("acr_values", &c.acr)
        .finish();
    let separator = if m.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    Ok(Redirect::to(&format!("{}{separator}{query}", m.authorization_endpoint)).into_response())
}

fn unreachable(e: UpstreamError) -> ApiError {
    let why = match e {
        UpstreamError::Unreachable(why) => why,
        UpstreamError::Refused(p) => p.code(),
    };
    tracing::error!(error = %why, "Pro Santé Connect unavailable");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "Pro Santé Connect ne répond pas pour le moment ; réessayez ou connectez-vous par mot de passe ou carte CPS. / Pro Santé Connect is not answering.",
    )
}

#[derive(Deserialize, Default)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn refuse(
    state: &AppState,
    audit: &Audit,
    subject: Option<&str>,
    detail: &str,
    status: StatusCode,
    message: &'static str,
) -> Result<Response, ApiError> {
    let mut record = audit
        .record(
            &Principal::anonymous(),
            "auth.psc.refused",
            "session",
            Outcome::Denied,
        )
        .detail(detail);
    if let Some(s) = subject {
        record = record.subject(s);
    }
    record.send(state).await?;
    Err(ApiError::new(status, message))
}

async fn callback(
    State(state): State<AppState>,
    audit: Audit,
    Query(q): Query<Callback>,
) -> Result<Response, ApiError> {
    let Some(upstream) = state.upstream_oidc.clone() else {
        return Err(not_configured());
    };
    let pending = match &q.state {
        Some(s) => federation::redeem(&state.db, s).await.map_err(auth_error)?,
        None => None,
    };
    let Some(pending) = pending else {
        return refuse(
            &state,
            &audit,
            None,
            "unknown, used or expired state",
            StatusCode::BAD_REQUEST,
            "Cette demande de connexion a expiré ou a déjà servi ; recommencez depuis la page de connexion. / This login request has expired or was already used.",
        )
        .await;
    };
    if let Some(error) = &q.error {
        return refuse(
            &state,
            &audit,
            None,
            &format!("provider error: {}", truncate(error)),
            StatusCode::FORBIDDEN,
            "Pro Santé Connect n'a pas authentifié la connexion (annulée ou refusée). / Pro Santé Connect did not authenticate the login.",
        )
        .await;
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(ApiError::bad_request("missing code"));
    };
    let national_id = match upstream
        .national_id(&state.settings.public_url, code, &pending)
        .await
    {
        Ok(id) => id,
        Err(UpstreamError::Refused(problem)) => {
            let message = match problem {
                FederationProblem::InsufficientAcr(_) => {
                    "Le niveau d'authentification obtenu auprès de Pro Santé Connect est insuffisant : utilisez votre carte CPS ou l'application e-CPS. / The authentication level is insufficient (eidas1 required)."
                }
                FederationProblem::NoNationalId => {
                    "Pro Santé Connect n'a pas transmis d'identifiant national de professionnel de santé. / No health professional national id was provided."
                }
                _ => {
                    "La réponse de Pro Santé Connect n'a pas pu être vérifiée ; la connexion est refusée. / The provider's answer could not be verified."
                }
            };
            return refuse(
                &state,
                &audit,
                None,
                &problem.code(),
                StatusCode::FORBIDDEN,
                message,
            )
            .await;
        }
        Err(e) => return Err(unreachable(e)),
    };
    match state
        .auth
        .federated_login(&national_id)
        .await
        .map_err(auth_error)?
    {
        FederatedLogin::Session {
            account,
            cookie,
            provisioned,
        } => {
            let principal = account_actor(&account);
            if provisioned {
                audit
                    .record(&principal, "auth.account.provisioned", "account", Outcome::Success)
                    .object(&account.id)
                    .detail("professional account without password, first Pro Santé Connect login")
                    .send(&state)
                    .await?;
            }
            audit
                .record(&principal, "login", "session", Outcome::Success)
                .detail("Pro Santé Connect; amr=fed")
                .send(&state)
                .await?;
            let mut r = Redirect::to(&pending.next).into_response();
            super::portal::set_cookie(

                &mut r,

                &session::set_cookie(&cookie, state.auth.settings.session_absolute_timeout),

            );
            Ok(r)
        }
        FederatedLogin::Refused(reason) => {
            refuse(
                &state,
                &audit,
                Some(&national_id),
                reason.as_str(),
                StatusCode::FORBIDDEN,
                match reason {
                    NationalIdRefusal::UnknownPractitioner => {
                        "Aucun professionnel actif ne correspond à votre identifiant national dans l'annuaire de la plateforme. / No active practitioner has your national id."
                    }
                    NationalIdRefusal::Disabled => {
                        "Votre compte a été désactivé par un administrateur. / Your account has been disabled."
                    }
                },
            )
            .await
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(120).collect()
}

pub fn upstream(
    settings: &megalis_config::Settings,
) -> Result<Option<Arc<Upstream>>, crate::ServerError> {
    settings
        .oidc_upstream
        .as_ref()
        .map(|c| Upstream::new(c).map(Arc::new))
        .transpose()
}
