//! CPS card login. `GET /auth/cps` on the mutual-TLS listener checks the card and hands a one-time
//! ticket to `GET /auth/cps/complete` on the portal's host, which sets the session cookie (the two
//! listeners have different host names in a cluster, so the cookie cannot be set on the first).
//! On the portal's host, `/auth/cps` sends the browser to the card listener.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use http::StatusCode;
use megalis_audit::Outcome;
use megalis_auth::{CardLogin, Principal, session};
use serde::Deserialize;

use super::auth_glue::{Audit, account_actor, auth_error};
use super::listener::PeerCertificates;
use super::{ApiError, AppState};

/// Routes of the mutual-TLS listener: the card login, nothing else.
pub fn card_listener_routes() -> Router<AppState> {
    Router::new().route("/auth/cps", get(card_login))
}

/// Routes of the portal's host.
pub fn portal_routes() -> Vec<super::routes::Route> {
    use super::routes::Route;
    vec![
        Route::open("/auth/cps", &["GET"], get(to_card_listener)),
        Route::open("/auth/cps/complete", &["GET"], get(complete)),
    ]
}

async fn to_card_listener(State(state): State<AppState>) -> Result<Response, ApiError> {
    match &state.settings.cps_public_url {
        Some(url) => Ok(Redirect::to(&format!("{url}/auth/cps")).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "La connexion par carte CPS n'est pas configurée sur cette plateforme ; connectez-vous par mot de passe. / CPS card login is not configured on this platform.",
        )),
    }
}

async fn card_login(
    State(state): State<AppState>,
    audit: Audit,
    certificates: Option<Extension<PeerCertificates>>,
) -> Result<Response, ApiError> {
    let Some(trust) = &state.card_trust else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not found"));
    };
    let chain = certificates.map(|Extension(c)| c.0).unwrap_or_default();
    let holder = match trust.check(&chain, rustls::pki_types::UnixTime::now()) {
        Ok(holder) => holder,
        Err(problem) => {
            audit
                .record(
                    &Principal::anonymous(),
                    "auth.cps.refused",
                    "session",
                    Outcome::Denied,
                )
                .detail(problem.code())
                .send(&state)
                .await?;
            let status = match problem {
                crate::cps::CardProblem::StaleRevocationList
                | crate::cps::CardProblem::UnknownRevocationStatus => {
                    tracing::error!(
                        "CPS card login refused: the revocation list is out of date; update cps.crl"
                    );
                    StatusCode::SERVICE_UNAVAILABLE
                }
                _ => StatusCode::FORBIDDEN,
            };
            return Err(ApiError::new(status, problem.message()));
        }
    };
    let outcome = state
        .auth
        .card_login(&holder.national_id)
        .await
        .map_err(auth_error)?;
    match outcome {
        CardLogin::Ticket {
            ticket,
            account,
            provisioned,
        } => {
            let principal = account_actor(&account);
            if provisioned {
                audit
                    .record(
                        &principal,
                        "auth.account.provisioned",
                        "account",
                        Outcome::Success,
                    )
                    .object(&account.id)
                    .detail("card-only professional account, first CPS card login")
                    .send(&state)
                    .await?;
            }
            audit
                .record(&principal, "auth.cps.login", "session", Outcome::Success)
                .detail(&format!("card serial {}", holder.serial))
                .send(&state)
                .await?;
            let target = format!(
                "{}/auth/cps/complete?ticket={ticket}",
                state.settings.public_url
            );
            Ok(Redirect::to(&target).into_response())
        }
        CardLogin::Refused(reason) => {
            audit
                .record(
                    &Principal::anonymous(),
                    "auth.cps.refused",
                    "session",
                    Outcome::Denied,
                )
                .subject(&holder.national_id)
                .detail(reason.as_str())
                .send(&state)
                .await?;
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                match reason {
                    megalis_auth::NationalIdRefusal::UnknownPractitioner => {
                        "Votre carte est valide, mais aucun professionnel actif ne correspond à son identifiant national dans l'annuaire. Contactez le support de la plateforme. / Your card is valid but no active practitioner has its national id."
                    }
                    megalis_auth::NationalIdRefusal::Disabled => {
                        "Votre compte a été désactivé par un administrateur. / Your account has been disabled."
                    }
                },
            ))
        }
    }
}

#[derive(Deserialize)]
struct Ticket {
    #[serde(default)]
    ticket: String,
}

async fn complete(
    State(state): State<AppState>,
    audit: Audit,
    Query(q): Query<Ticket>,
) -> Result<Response, ApiError> {
    let redeemed = if q.ticket.is_empty() {
        None
    } else {
        state
            .auth
            .redeem_login_ticket(&q.ticket)
            .await
            .map_err(auth_error)?
    };
    let Some((account, cookie, _)) = redeemed else {
        audit
            .record(&Principal::anonymous(), "login", "session", Outcome::Denied)
            .detail("CPS ticket unknown, used or expired")
            .send(&state)
            .await?;
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Ce lien de connexion a expiré ou a déjà servi. Reconnectez-vous avec votre carte depuis la page de connexion. / This login link has expired or was already used.",
        ));
    };
    let principal = account_actor(&account);
    audit
        .record(&principal, "login", "session", Outcome::Success)
        .detail("CPS card; amr=sc pin")
        .send(&state)
        .await?;
    let mut r = Redirect::to("/").into_response();
    super::portal::set_cookie(
        &mut r,
        &session::set_cookie(&cookie, state.auth.settings.session_absolute_timeout),
    );
    Ok(r)
}
