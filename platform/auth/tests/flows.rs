//! Login, sessions, the OpenID Provider's flows and token validation, on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use megalis_auth::oidc::{self, GrantType, NewClient};
use megalis_auth::service::{AuthorizeError, AuthorizeRequest, RefusalReason, TokenRequest};
use megalis_auth::{
    AccountKind, Auth, AuthError, AuthSettings, GrantKind, GrantRule, LoginOutcome, NewAccount,
    PractitionerInfo, Principal, StaticDirectory, account, totp,
};
use megalis_store::{Backend, Database};

const ISSUER: &str = "https://megalis.test";
const NID: &str = "810001234567";
const PASSWORD: &str = "Ty-Kreiz-Kemper-29";
const SECRET: &str = "0123456789abcdef0123456789abcdef-app";

struct Env {
    _dir: Option<tempfile::TempDir>,
    db: Database,
    auth: Arc<Auth>,
    directory: Arc<StaticDirectory>,
}

async fn env(b: Backend) -> Env {
    let (dir, db) = megalis_testkit::fresh_database(b).await;
    let directory = Arc::new(StaticDirectory::new([PractitionerInfo {
        national_id: NID.into(),
        family_name: "Le Goff".into(),
        given_name: "Anne".into(),
        profession: Some("10".into()),
        specialty: Some("SM54".into()),
        organisations: vec!["350000139".into()],
    }]));
    let mut settings = AuthSettings::new(ISSUER);
    settings.max_failures = 3;
    let auth = Auth::start(db.clone(), settings, directory.clone())
        .await
        .unwrap();
    account::create(
        &db,
        &NewAccount {
            username: "alegoff".into(),
            kind: AccountKind::Professional,
            national_id: Some(NID.into()),
            organisation: None,
            display_name: "Dr Anne Le Goff".into(),
            roles: vec!["clinician".into()],
            password: Some(PASSWORD.into()),
        },
    )
    .await
    .unwrap();
    oidc::add_client(
        &db,
        &NewClient {
            id: "breizh-rein".into(),
            name: "Breizh Rein".into(),
            secret: SECRET.into(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: vec!["https://rein.test/cb".into()],
            post_logout_redirect_uris: vec!["https://rein.test/bye".into()],
            scopes: vec!["openid".into(), "profile".into(), "user/Patient.rs".into()],
            launch_url: None,
        },
    )
    .await
    .unwrap();
    oidc::add_client(
        &db,
        &NewClient {
            id: "sih-chu".into(),
            name: "SIH CHU".into(),
            secret: SECRET.into(),
            grant_types: vec![GrantType::ClientCredentials],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec!["system/Patient.rs".into()],
            launch_url: None,
        },
    )
    .await
    .unwrap();
    auth.add_grant(&GrantRule {
        application: "breizh-rein".into(),
        kind: GrantKind::Profession,
        value: "10".into(),
    })
    .await
    .unwrap();
    Env {
        _dir: dir,
        db,
        auth,
        directory,
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Enrols TOTP for the account and returns its secret.
async fn enrol_totp(e: &Env) -> String {
    let a = account::by_username(&e.db, "alegoff")
        .await
        .unwrap()
        .unwrap();
    let (secret, uri) = e.auth.begin_totp_enrolment(&a).await.unwrap();
    assert!(uri.starts_with("otpauth://totp/Megalis:alegoff?secret="));
    // Enrolment uses the previous step, so that the login below may use the current one.
    let code = totp::code_at(&secret, unix_now() - 30).unwrap();
    let codes = e
        .auth
        .confirm_totp_enrolment(&a.id, &code)
        .await
        .unwrap()
        .expect("first code confirms enrolment");
    assert_eq!(codes.len(), 10);
    secret
}

async fn strong_principal(e: &Env) -> Principal {
    let secret = enrol_totp(e).await;
    let code = totp::code_at(&secret, unix_now()).unwrap();
    let LoginOutcome::Success { account, amr, .. } = e
        .auth
        .password_login("ALegoff ", PASSWORD, Some(&code))
        .await
        .unwrap()
    else {
        panic!("login with password and TOTP must succeed")
    };
    let amr: Vec<String> = amr.iter().map(|s| s.to_string()).collect();
    e.auth
        .principal_for(&account, &amr, None)
        .await
        .unwrap()
        .unwrap()
}

macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body(megalis_store::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body(megalis_store::Backend::Postgres).await
            }
        }
    };
}

async fn password_login_and_lockout(b: Backend) {
    let e = env(b).await;
    match e
        .auth
        .password_login("alegoff", PASSWORD, None)
        .await
        .unwrap()
    {
        LoginOutcome::Success {
            second_factor, amr, ..
        } => {
            assert!(!second_factor, "no TOTP enrolled: no patient data");
            assert_eq!(amr, ["pwd"]);
        }
        other => panic!("{other:?}"),
    }
    // Unknown and known names are refused and then locked alike (no enumeration).
    for name in ["alegoff", "nobody"] {
        for _ in 0..2 {
            assert!(matches!(
                e.auth
                    .password_login(name, "Wrong-Password-1", None)
                    .await
                    .unwrap(),
                LoginOutcome::Refused(_)
            ));
        }
        assert!(matches!(
            e.auth
                .password_login(name, "Wrong-Password-1", None)
                .await
                .unwrap(),
            LoginOutcome::Locked { .. }
        ));
        // Locked: even the right password is refused until the lock ends.
        assert!(matches!(
            e.auth.password_login(name, PASSWORD, None).await.unwrap(),
            LoginOutcome::Locked { .. }
        ));
    }
    // An administrator's reset lifts the lock.
    e.auth
        .reset_password("alegoff", "Nouveau-Mot-2-Passe!")
        .await
        .unwrap();
    assert!(matches!(
        e.auth
            .password_login("alegoff", "Nouveau-Mot-2-Passe!", None)
            .await
            .unwrap(),
        LoginOutcome::Success { .. }
    ));
    // Disabled accounts are refused like wrong passwords.
    e.auth.set_account_disabled("alegoff", true).await.unwrap();
    assert!(matches!(
        e.auth
            .password_login("alegoff", "Nouveau-Mot-2-Passe!", None)
            .await
            .unwrap(),
        LoginOutcome::Refused(RefusalReason::Disabled)
    ));
}
both_backends!(login_lockout, password_login_and_lockout);

async fn second_factor_and_closure(b: Backend) {
    let e = env(b).await;
    let secret = enrol_totp(&e).await;
    assert!(matches!(
        e.auth
            .password_login("alegoff", PASSWORD, None)
            .await
            .unwrap(),
        LoginOutcome::Refused(RefusalReason::BadSecondFactor)
    ));
    let code = totp::code_at(&secret, unix_now()).unwrap();
    assert!(matches!(
        e.auth
            .password_login("alegoff", PASSWORD, Some(&code))
            .await
            .unwrap(),
        LoginOutcome::Success {
            second_factor: true,
            ..
        }
    ));
    // The same code twice: refused (replay).
    assert!(matches!(
        e.auth
            .password_login("alegoff", PASSWORD, Some(&code))
            .await
            .unwrap(),
        LoginOutcome::Refused(RefusalReason::BadSecondFactor)
    ));
    // A closed practitioner cannot log in.
    e.directory.close(NID);
    let code = totp::code_at(&secret, unix_now() + 30).unwrap();
    assert!(matches!(
        e.auth
            .password_login("alegoff", PASSWORD, Some(&code))
            .await
            .unwrap(),
        LoginOutcome::Refused(RefusalReason::ClosedPractitioner)
    ));
}
both_backends!(second_factor, second_factor_and_closure);

async fn sessions_expire_and_end(b: Backend) {
    let mut e = env(b).await;
    let a = account::by_username(&e.db, "alegoff")
        .await
        .unwrap()
        .unwrap();
    let (raw, s) = e.auth.open_session(&a, &["pwd"], false).await.unwrap();
    let p = e.auth.principal_from_session(&raw).await.unwrap().unwrap();
    assert_eq!(p.national_id.as_deref(), Some(NID));
    assert_eq!(p.profession.as_deref(), Some("10"));
    assert_eq!(p.organisation.as_deref(), Some("350000139"));
    assert!(!p.may_access_patient_data());
    assert!(s.csrf_ok(&s.csrf_token) && !s.csrf_ok("") && !s.csrf_ok("forged"));
    // Idle timeout: a zero-length idle window ends the session.
    let mut settings = e.auth.settings.clone();
    settings.session_idle_timeout = Duration::ZERO;
    let strict = Auth::start(e.db.clone(), settings, e.directory.clone())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(strict.principal_from_session(&raw).await.unwrap().is_none());
    assert!(
        e.auth.principal_from_session(&raw).await.unwrap().is_none(),
        "deleted"
    );
    // Disabling ends the sessions at once.
    let (raw, _) = e.auth.open_session(&a, &["pwd"], false).await.unwrap();
    e.auth.set_account_disabled("alegoff", true).await.unwrap();
    assert!(e.auth.principal_from_session(&raw).await.unwrap().is_none());
    e.auth = strict;
}
both_backends!(sessions, sessions_expire_and_end);

fn pkce() -> (String, String) {
    let verifier = "a-very-long-code-verifier-of-at-least-43-characters-1234";
    (
        verifier.into(),
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            verifier.as_bytes(),
        )),
    )
}

fn authorize_request(challenge: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        client_id: Some("breizh-rein".into()),
        redirect_uri: Some("https://rein.test/cb".into()),
        response_type: Some("code".into()),
        scope: Some("openid profile user/Patient.rs".into()),
        state: Some("xyz".into()),
        nonce: Some("n-0S6".into()),
        code_challenge: Some(challenge.into()),
        code_challenge_method: Some("S256".into()),
    }
}

fn code_of(location: &str) -> String {
    let url = url::Url::parse(location).unwrap();
    let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs.get("state").map(String::as_str), Some("xyz"));
    assert_eq!(pairs.get("iss").map(String::as_str), Some(ISSUER));
    pairs.get("code").cloned().expect("code")
}

fn invalid_grant(r: Result<megalis_auth::service::TokenResponse, AuthError>) -> String {
    match r {
        Err(AuthError::OAuth { code, description }) => {
            assert_eq!(code, "invalid_grant", "{description}");
            description
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

async fn authorization_code_flow(b: Backend) {
    let e = env(b).await;
    let user = strong_principal(&e).await;
    let client = e
        .auth
        .authenticate_client("breizh-rein", SECRET)
        .await
        .unwrap();
    assert!(
        e.auth
            .authenticate_client("breizh-rein", "wrong")
            .await
            .is_err()
    );
    let (verifier, challenge) = pkce();

    // Bad requests: redirect URI mismatch (no redirect at all), missing PKCE.
    let mut bad = authorize_request(&challenge);
    bad.redirect_uri = Some("https://rein.test/cb/../evil".into());
    assert!(matches!(
        e.auth.authorize(&bad, &user).await,
        Err(AuthorizeError::Page(_))
    ));
    let mut bad = authorize_request(&challenge);
    bad.code_challenge = None;
    assert!(matches!(
        e.auth.authorize(&bad, &user).await,
        Err(AuthorizeError::Redirect {
            code: "invalid_request",
            ..
        })
    ));
    let mut plain = authorize_request(&challenge);
    plain.code_challenge_method = Some("plain".into());
    assert!(e.auth.authorize(&plain, &user).await.is_err());

    let location = e
        .auth
        .authorize(&authorize_request(&challenge), &user)
        .await
        .unwrap();
    let code = code_of(&location);
    let req = |verifier: &str| TokenRequest {
        grant_type: "authorization_code".into(),
        code: Some(code.clone()),
        redirect_uri: Some("https://rein.test/cb".into()),
        code_verifier: Some(verifier.into()),
        ..Default::default()
    };
    // Wrong verifier first: the code is spent (one try per code).
    let description = invalid_grant(
        e.auth
            .token(
                &client,
                &req("wrong-verifier-wrong-verifier-wrong-verifier-1"),
            )
            .await,
    );
    assert!(description.contains("PKCE"), "{description}");
    let location = e
        .auth
        .authorize(&authorize_request(&challenge), &user)
        .await
        .unwrap();
    let code = code_of(&location);
    let req = TokenRequest {
        grant_type: "authorization_code".into(),
        code: Some(code.clone()),
        redirect_uri: Some("https://rein.test/cb".into()),
        code_verifier: Some(verifier.clone()),
        ..Default::default()
    };
    let tokens = e.auth.token(&client, &req).await.unwrap();
    assert!(tokens.id_token.is_some());
    let p = e.auth.validate_access_token(&tokens.access_token).unwrap();
    assert_eq!(p.national_id.as_deref(), Some(NID));
    assert_eq!(p.client_id.as_deref(), Some("breizh-rein"));
    assert!(p.may_access_patient_data());

    // Refresh rotation, then reuse of the old refresh token revokes the family.
    let refresh1 = tokens.refresh_token.clone().unwrap();
    let refresh = |t: &str| TokenRequest {
        grant_type: "refresh_token".into(),
        refresh_token: Some(t.into()),
        ..Default::default()
    };
    let rotated = e.auth.token(&client, &refresh(&refresh1)).await.unwrap();
    let refresh2 = rotated.refresh_token.clone().unwrap();
    assert_ne!(refresh1, refresh2);
    assert!(e.auth.validate_access_token(&rotated.access_token).is_ok());
    invalid_grant(e.auth.token(&client, &refresh(&refresh1)).await);
    invalid_grant(e.auth.token(&client, &refresh(&refresh2)).await);
    assert!(
        e.auth.validate_access_token(&rotated.access_token).is_err(),
        "family revoked"
    );
    assert!(
        e.auth.validate_access_token(&tokens.access_token).is_err(),
        "family revoked"
    );

    // A replayed code is refused and revokes what it issued.
    let location = e
        .auth
        .authorize(&authorize_request(&challenge), &user)
        .await
        .unwrap();
    let code = code_of(&location);
    let req = TokenRequest {
        code: Some(code),
        ..req
    };
    let first = e.auth.token(&client, &req).await.unwrap();
    assert!(e.auth.validate_access_token(&first.access_token).is_ok());
    invalid_grant(e.auth.token(&client, &req).await);
    assert!(e.auth.validate_access_token(&first.access_token).is_err());

    // A grant removed: the application's tokens stop working at once.
    let location = e
        .auth
        .authorize(&authorize_request(&challenge), &user)
        .await
        .unwrap();
    let tokens = e
        .auth
        .token(
            &client,
            &TokenRequest {
                code: Some(code_of(&location)),
                ..req.clone()
            },
        )
        .await
        .unwrap();
    assert!(e.auth.validate_access_token(&tokens.access_token).is_ok());
    e.auth
        .remove_grant(&GrantRule {
            application: "breizh-rein".into(),
            kind: GrantKind::Profession,
            value: "10".into(),
        })
        .await
        .unwrap();
    assert!(e.auth.validate_access_token(&tokens.access_token).is_err());
    assert!(matches!(
        e.auth
            .authorize(&authorize_request(&challenge), &user)
            .await,
        Err(AuthorizeError::Redirect {
            code: "access_denied",
            ..
        })
    ));
}
both_backends!(code_flow, authorization_code_flow);

async fn client_credentials_and_revocation(b: Backend) {
    let e = env(b).await;
    let sih = e.auth.authenticate_client("sih-chu", SECRET).await.unwrap();
    let t = e
        .auth
        .token(
            &sih,
            &TokenRequest {
                grant_type: "client_credentials".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let p = e.auth.validate_access_token(&t.access_token).unwrap();
    assert_eq!(p.kind, megalis_auth::PrincipalKind::System);
    assert_eq!(p.scopes, ["system/Patient.rs"]);
    assert!(e.auth.may_use(&p, "sih-chu") && !e.auth.may_use(&p, "breizh-rein"));
    // Scope beyond the registration, grant type not allowed.
    assert!(
        e.auth
            .token(
                &sih,
                &TokenRequest {
                    grant_type: "client_credentials".into(),
                    scope: Some("system/*.cruds".into()),
                    ..Default::default()
                }
            )
            .await
            .is_err()
    );
    assert!(
        e.auth
            .token(
                &sih,
                &TokenRequest {
                    grant_type: "authorization_code".into(),
                    ..Default::default()
                }
            )
            .await
            .is_err()
    );
    // Introspection, then revocation of the access token (RFC 7009), seen by introspection.
    let active = e.auth.introspect(&sih, &t.access_token).await.unwrap();
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], "sih-chu");
    e.auth.revoke_token(&sih, &t.access_token).await.unwrap();
    assert_eq!(
        e.auth.introspect(&sih, &t.access_token).await.unwrap()["active"],
        false
    );
    // A revoked client loses every token at once, on this replica and (after one refresh) others.
    let t = e
        .auth
        .token(
            &sih,
            &TokenRequest {
                grant_type: "client_credentials".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let other_replica = Auth::start(e.db.clone(), e.auth.settings.clone(), e.directory.clone())
        .await
        .unwrap();
    assert!(other_replica.validate_access_token(&t.access_token).is_ok());
    e.auth.revoke_client("sih-chu").await.unwrap();
    assert!(e.auth.validate_access_token(&t.access_token).is_err());
    other_replica.refresh().await.unwrap();
    assert!(
        other_replica
            .validate_access_token(&t.access_token)
            .is_err()
    );
    assert!(e.auth.authenticate_client("sih-chu", SECRET).await.is_err());
}
both_backends!(client_credentials, client_credentials_and_revocation);

/// `auth.access_token_algorithm = RS256`: access tokens signed with the RSA key, validated by
/// this replica and by one still configured for ES256 (both publish both keys).
async fn rs256_access_tokens(b: Backend) {
    let e = env(b).await;
    let rs = Auth::start(
        e.db.clone(),
        megalis_auth::AuthSettings {
            access_token_algorithm: megalis_auth::SigningAlgorithm::RS256,
            ..e.auth.settings.clone()
        },
        e.directory.clone(),
    )
    .await
    .unwrap();
    let sih = rs.authenticate_client("sih-chu", SECRET).await.unwrap();
    let t = rs
        .token(
            &sih,
            &TokenRequest {
                grant_type: "client_credentials".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(&t.access_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwk = rs.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header.kid.clone().unwrap().as_str())
        .cloned()
        .unwrap();
    assert_eq!(jwk["kty"], "RSA");
    assert!(rs.validate_access_token(&t.access_token).is_ok());
    assert!(e.auth.validate_access_token(&t.access_token).is_ok());
    // The signature really is checked: one flipped bit in it and the token is refused.
    let mut forged = t.access_token.clone().into_bytes();
    let at = forged.len() - 5;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    assert!(
        e.auth
            .validate_access_token(std::str::from_utf8(&forged).unwrap())
            .is_err()
    );
}
both_backends!(rs256_tokens, rs256_access_tokens);

/// A system client feeds only the assigning authorities it is bound to; the binding reaches
/// other replicas on their next refresh and shows in introspection.
async fn clients_feed_only_their_authorities(b: Backend) {
    let e = env(b).await;
    const CHU: &str = "1.2.250.1.71.4.2.1.350000139";
    assert!(
        e.auth
            .bind_authority("sih-chu", &format!("urn:oid:{CHU}"))
            .await
            .unwrap()
    );
    assert!(
        !e.auth.bind_authority("sih-chu", CHU).await.unwrap(),
        "idempotent"
    );
    assert!(
        e.auth
            .bind_authority("sih-chu", "CHU de Rennes")
            .await
            .is_err()
    );
    assert!(e.auth.bind_authority("nobody", CHU).await.is_err());
    let sih = e.auth.authenticate_client("sih-chu", SECRET).await.unwrap();
    let t = e
        .auth
        .token(
            &sih,
            &TokenRequest {
                grant_type: "client_credentials".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let p = e.auth.validate_access_token(&t.access_token).unwrap();
    assert!(e.auth.may_feed(&p, CHU));
    assert!(e.auth.may_feed(&p, &format!("urn:oid:{CHU}")));
    assert!(
        !e.auth.may_feed(&p, "1.2.250.1.71.4.2.1.290000017"),
        "another hospital's domain"
    );
    assert!(!e.auth.may_feed(&p, "not an oid"));
    // A user, even a strongly authenticated one, is no feed.
    assert!(!e.auth.may_feed(&strong_principal(&e).await, CHU));
    let seen = e.auth.introspect(&sih, &t.access_token).await.unwrap();
    assert_eq!(seen["assigning_authorities"], serde_json::json!([CHU]));
    // Unbinding on one replica applies to another after its refresh (every second in serve).
    let other_replica = Auth::start(e.db.clone(), e.auth.settings.clone(), e.directory.clone())
        .await
        .unwrap();
    assert!(other_replica.may_feed(&p, CHU));
    assert!(e.auth.unbind_authority("sih-chu", CHU).await.unwrap());
    assert!(!e.auth.may_feed(&p, CHU));
    other_replica.refresh().await.unwrap();
    assert!(!other_replica.may_feed(&p, CHU));
    assert!(
        e.auth
            .introspect(&sih, &t.access_token)
            .await
            .unwrap()
            .get("assigning_authorities")
            .is_none()
    );
}
both_backends!(client_authorities, clients_feed_only_their_authorities);

/// Signs arbitrary claims with the provider's own current key (to forge expired or misdirected
/// tokens that are otherwise genuine).
async fn sign_with_provider_key(db: &Database, claims: &serde_json::Value, typ: &str) -> String {
    let keys = oidc::keys::load(db).await.unwrap();
    let key = keys
        .iter()
        .find(|k| k.alg == jsonwebtoken::Algorithm::ES256)
        .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some(typ.into());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

async fn bad_tokens_are_refused(b: Backend) {
    let e = env(b).await;
    let sih = e.auth.authenticate_client("sih-chu", SECRET).await.unwrap();
    let good = e
        .auth
        .token(
            &sih,
            &TokenRequest {
                grant_type: "client_credentials".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .access_token;
    let claims_of = |t: &str| -> serde_json::Value {
        serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(t.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let claims = claims_of(&good);
    let parts: Vec<&str> = good.split('.').collect();

    // Tampered payload (scope widened), original signature.
    let mut widened = claims.clone();
    widened["scope"] = "system/*.cruds".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(widened.to_string()),
        parts[2]
    );
    // alg: none, no signature.
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    let alg_none = format!("{none_header}.{}.", parts[1]);
    // Genuine signature but expired, wrong audience, or an ID token used as an access token.
    let mut expired = claims.clone();
    expired["exp"] = (unix_now() as i64 - 3600).into();
    expired["iat"] = (unix_now() as i64 - 7200).into();
    let expired = sign_with_provider_key(&e.db, &expired, "at+jwt").await;
    let mut other_aud = claims.clone();
    other_aud["aud"] = "https://elsewhere.test".into();
    let other_aud = sign_with_provider_key(&e.db, &other_aud, "at+jwt").await;
    let as_id_token = sign_with_provider_key(&e.db, &claims, "JWT").await;
    // A key the provider never had.
    let foreign = {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some("at+jwt".into());
        header.kid = oidc::keys::load(&e.db)
            .await
            .unwrap()
            .iter()
            .find(|k| k.alg == jsonwebtoken::Algorithm::ES256)
            .map(|k| k.kid.clone());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
        )
        .unwrap()
    };
    // Algorithm confusion: signed by the provider's real ES256 key, but naming its RS256 key.
    let confused = {
        let keys = oidc::keys::load(&e.db).await.unwrap();
        let es = keys
            .iter()
            .find(|k| k.alg == jsonwebtoken::Algorithm::ES256)
            .unwrap();
        let rs = keys
            .iter()
            .find(|k| k.alg == jsonwebtoken::Algorithm::RS256)
            .unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(rs.kid.clone());
        jsonwebtoken::encode(&header, &claims, &es.encoding).unwrap()
    };
    for (what, token) in [
        ("algorithm of another key", confused.as_str()),
        ("tampered", tampered.as_str()),
        ("alg none", alg_none.as_str()),
        ("expired", expired.as_str()),
        ("wrong audience", other_aud.as_str()),
        ("ID token typ", as_id_token.as_str()),
        ("foreign key", foreign.as_str()),
        ("garbage", "not.a.jwt"),
    ] {
        assert!(
            e.auth.validate_access_token(token).is_err(),
            "{what} accepted"
        );
    }
    assert!(e.auth.validate_access_token(&good).is_ok());
    // After a key rotation, tokens signed by the old key stay valid; new ones use the new key.
    e.auth.rotate_keys_now().await.unwrap();
    assert!(e.auth.validate_access_token(&good).is_ok());
    // One new key per algorithm; the retired ones stay published for their tokens' lifetime.
    assert_eq!(e.auth.jwks()["keys"].as_array().unwrap().len(), 4);
}
both_backends!(bad_tokens, bad_tokens_are_refused);

async fn directory_closure_refuses_tokens(b: Backend) {
    let e = env(b).await;
    let user = strong_principal(&e).await;
    let client = e
        .auth
        .authenticate_client("breizh-rein", SECRET)
        .await
        .unwrap();
    let (verifier, challenge) = pkce();
    let location = e
        .auth
        .authorize(&authorize_request(&challenge), &user)
        .await
        .unwrap();
    let tokens = e
        .auth
        .token(
            &client,
            &TokenRequest {
                grant_type: "authorization_code".into(),
                code: Some(code_of(&location)),
                redirect_uri: Some("https://rein.test/cb".into()),
                code_verifier: Some(verifier),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(e.auth.validate_access_token(&tokens.access_token).is_ok());
    // Closed by the directory: the next refresh of the caches refuses the token.
    e.directory.close(NID);
    e.auth.refresh().await.unwrap();
    assert!(e.auth.validate_access_token(&tokens.access_token).is_err());
    // And the refresh token no longer yields tokens.
    let refreshed = e
        .auth
        .token(
            &client,
            &TokenRequest {
                grant_type: "refresh_token".into(),
                refresh_token: tokens.refresh_token.clone(),
                ..Default::default()
            },
        )
        .await;
    invalid_grant(refreshed);
}
both_backends!(directory_closure, directory_closure_refuses_tokens);

/// A verified card of an active practitioner yields a one-time ticket; redeeming it opens a
/// strong session on the practitioner's account. A practitioner without an account gets a
/// card-only one; unknown, closed and disabled are refused.
async fn card_login_tickets(b: Backend) {
    use megalis_auth::{CardLogin, NationalIdRefusal};
    let e = env(b).await;
    let CardLogin::Ticket {
        ticket,
        account,
        provisioned,
    } = e.auth.card_login(NID).await.unwrap()
    else {
        panic!("an active practitioner's card logs in");
    };
    assert_eq!(account.username, "alegoff");
    assert!(!provisioned, "the existing account is used");
    let (redeemed, cookie, session) = e
        .auth
        .redeem_login_ticket(&ticket)
        .await
        .unwrap()
        .expect("a fresh ticket is redeemed");
    assert_eq!(redeemed.id, account.id);
    assert!(session.second_factor);
    assert_eq!(session.amr, ["sc", "pin"]);
    let principal = e
        .auth
        .principal_from_session(&cookie)
        .await
        .unwrap()
        .unwrap();
    assert!(principal.second_factor);
    assert_eq!(principal.national_id.as_deref(), Some(NID));
    // Once only.
    assert!(e.auth.redeem_login_ticket(&ticket).await.unwrap().is_none());
    assert!(
        e.auth
            .redeem_login_ticket("not-a-ticket")
            .await
            .unwrap()
            .is_none()
    );

    // A practitioner in the directory who never had an account.
    e.directory.insert(PractitionerInfo {
        national_id: "810009876543".into(),
        family_name: "Kerjean".into(),
        given_name: "Yann".into(),
        profession: Some("10".into()),
        specialty: None,
        organisations: vec!["290000017".into()],
    });
    let CardLogin::Ticket {
        account,
        provisioned,
        ..
    } = e.auth.card_login("810009876543").await.unwrap()
    else {
        panic!("a directory practitioner logs in with a card");
    };
    assert!(provisioned);
    assert_eq!(account.display_name, "Yann Kerjean");
    assert_eq!(account.organisation.as_deref(), Some("290000017"));
    let CardLogin::Ticket { provisioned, .. } = e.auth.card_login("810009876543").await.unwrap()
    else {
        panic!("second card login");
    };
    assert!(!provisioned, "provisioned once");

    assert!(matches!(
        e.auth.card_login("810000000000").await.unwrap(),
        CardLogin::Refused(NationalIdRefusal::UnknownPractitioner)
    ));
    e.auth.set_account_disabled("alegoff", true).await.unwrap();
    assert!(matches!(
        e.auth.card_login(NID).await.unwrap(),
        CardLogin::Refused(NationalIdRefusal::Disabled)
    ));
    e.directory.close("810009876543");
    assert!(matches!(
        e.auth.card_login("810009876543").await.unwrap(),
        CardLogin::Refused(NationalIdRefusal::UnknownPractitioner)
    ));
}
both_backends!(card_login, card_login_tickets);

/// RFC 8705: a system client with a registered certificate authenticates with it and gets
/// tokens bound to it; a bound token is refused without that certificate.
async fn certificate_bound_tokens(b: Backend) {
    let e = env(b).await;
    let thumbprint = oidc::certificate_thumbprint(b"the DER bytes of the client's certificate");
    let other = oidc::certificate_thumbprint(b"another certificate");
    assert!(
        oidc::set_client_certificate(&e.db, "sih-chu", Some(&thumbprint))
            .await
            .unwrap()
    );
    let client = e
        .auth
        .authenticate_client_by_certificate("sih-chu", &thumbprint)
        .await
        .expect("the registered certificate authenticates the client");
    assert!(
        e.auth
            .authenticate_client_by_certificate("sih-chu", &other)
            .await
            .is_err()
    );
    assert!(
        e.auth
            .authenticate_client_by_certificate("breizh-rein", &thumbprint)
            .await
            .is_err(),
        "a client without a registered certificate cannot use one"
    );
    let req = TokenRequest {
        grant_type: "client_credentials".into(),
        ..Default::default()
    };
    let bound = e
        .auth
        .token_presented(&client, &req, Some(&thumbprint))
        .await
        .unwrap()
        .access_token;
    let claims = e.auth.access_claims(&bound).unwrap();
    assert_eq!(claims.cnf.as_ref().unwrap().x5t_s256, thumbprint);
    assert!(
        e.auth.validate_access_token(&bound).is_err(),
        "no certificate"
    );
    assert!(
        e.auth
            .validate_access_token_presented(&bound, Some(&other))
            .is_err(),
        "another certificate"
    );
    let p = e
        .auth
        .validate_access_token_presented(&bound, Some(&thumbprint))
        .unwrap();
    assert_eq!(p.client_id.as_deref(), Some("sih-chu"));
    let introspected = e.auth.introspect(&client, &bound).await.unwrap();
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["cnf"]["x5t#S256"], thumbprint.as_str());
    // The same client over a connection without its certificate gets an unbound token.
    let unbound = e.auth.token(&client, &req).await.unwrap().access_token;
    assert!(e.auth.access_claims(&unbound).unwrap().cnf.is_none());
    assert!(e.auth.validate_access_token(&unbound).is_ok());
}
both_backends!(certificate_bound, certificate_bound_tokens);
