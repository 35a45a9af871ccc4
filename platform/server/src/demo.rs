//! The documented demo region (`--demo`): organisations, practitioners, accounts with known
//! passwords (printed in the start banner), applications and their grants. Seeding is idempotent:
//! a restart keeps what exists. Test mode uses the same practitioners so that end-to-end tests
//! log in as documented users.

use std::sync::Arc;

use megalis_auth::grants::{Application, GrantKind, GrantRule};
use megalis_auth::oidc::{GrantType, NewClient};
use megalis_auth::{AccountKind, Auth, AuthError, NewAccount, PractitionerInfo, StaticDirectory};

/// Synthetic FINESS numbers (99… is not allocated): CHU de Rennes and CHU de Brest stand-ins.
pub const ORG_RENNES: &str = "359999001";
pub const ORG_BREST: &str = "299999001";

pub struct DemoUser {
    pub username: &'static str,
    pub password: &'static str,
    pub kind: AccountKind,
    pub display_name: &'static str,
    pub national_id: Option<&'static str>,
    pub organisation: Option<&'static str>,
    pub roles: &'static [&'static str],
}

pub const USERS: &[DemoUser] = &[
    DemoUser {
        username: "admin",
        password: "Demo-Breizh-Gouarn-2026!",
        kind: AccountKind::Admin,
        display_name: "Administrateur régional",
        national_id: None,
        organisation: None,
        roles: &["admin"],
    },
    DemoUser {
        username: "alegoff",
        password: "Demo-Docteur-Rennes-29!",
        kind: AccountKind::Professional,
        display_name: "Dr Anne Le Goff",
        national_id: Some("810001234567"),
        organisation: None,
        roles: &["clinician"],
    },
    DemoUser {
        username: "ykerbrat",
        password: "Demo-Infirmier-Brest-29!",
        kind: AccountKind::Professional,
        display_name: "Yann Kerbrat",
        national_id: Some("810007654321"),
        organisation: None,
        roles: &["clinician"],
    },
    DemoUser {
        username: "secretariat.rennes",
        password: "Demo-Secretariat-Rennes-35!",
        kind: AccountKind::Staff,
        display_name: "Secrétariat néphrologie, Rennes",
        national_id: None,
        organisation: Some(ORG_RENNES),
        roles: &["secretariat"],
    },
];

/// The demo directory: a physician (profession 10) in Rennes and a nurse (profession 60) in Brest.
pub fn practitioners() -> Vec<PractitionerInfo> {
    vec![
        PractitionerInfo {
            national_id: "810001234567".into(),
            family_name: "Le Goff".into(),
            given_name: "Anne".into(),
            profession: Some("10".into()),
            specialty: Some("SM54".into()),
            organisations: vec![ORG_RENNES.into()],
        },
        PractitionerInfo {
            national_id: "810007654321".into(),
            family_name: "Kerbrat".into(),
            given_name: "Yann".into(),
            profession: Some("60".into()),
            specialty: None,
            organisations: vec![ORG_BREST.into()],
        },
    ]
}

pub fn directory(seed: bool) -> Arc<StaticDirectory> {
    Arc::new(if seed {
        StaticDirectory::new(practitioners())
    } else {
        StaticDirectory::default()
    })
}

fn ignore_conflict(r: Result<(), AuthError>) -> Result<(), AuthError> {
    match r {
        Err(AuthError::Conflict(_)) => Ok(()),
        other => other,
    }
}

/// Seeds accounts, applications and grants of the demo region.
pub async fn seed(auth: &Auth, public_url: &str) -> Result<(), AuthError> {
    for u in USERS {
        let new = NewAccount {
            username: u.username.into(),
            kind: u.kind,
            national_id: u.national_id.map(Into::into),
            organisation: u.organisation.map(Into::into),
            display_name: u.display_name.into(),
            roles: u.roles.iter().map(|r| r.to_string()).collect(),
            password: Some(u.password.into()),
        };
        ignore_conflict(
            megalis_auth::account::create(&auth.db, &new)
                .await
                .map(|_| ()),
        )?;
    }
    let apps = [
        ("breizh-rein", "Breizh Rein (maladie rénale chronique)"),
        ("messagerie", "Messagerie sécurisée MSSanté"),
        ("imagerie", "Imagerie médicale"),
        ("teleconsultation", "Téléconsultation"),
    ];
    for (id, name) in apps {
        megalis_auth::grants::register_application(
            &auth.db,
            &Application {
                id: id.into(),
                name: name.into(),
                launch_url: Some(format!("{public_url}/apps/{id}/")),
            },
        )
        .await?;
    }
    // A demo OIDC client for Breizh Rein, with a documented secret (demo only).
    ignore_conflict(
        megalis_auth::oidc::add_client(
            &auth.db,
            &NewClient {
                id: "breizh-rein".into(),
                name: "Breizh Rein".into(),
                secret: "demo-secret-breizh-rein-0123456789abcdef".into(),
                grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                redirect_uris: vec![format!("{public_url}/apps/breizh-rein/callback")],
                post_logout_redirect_uris: vec![format!("{public_url}/apps/breizh-rein/")],
                scopes: vec![
                    "openid".into(),
                    "profile".into(),
                    "offline_access".into(),
                    "user/Patient.rs".into(),
                    "user/Observation.rs".into(),
                ],
                launch_url: Some(format!("{public_url}/apps/breizh-rein/")),
            },
        )
        .await,
    )?;
    let rules = [
        ("breizh-rein", GrantKind::Profession, "10"),
        ("messagerie", GrantKind::Everyone, ""),
        ("imagerie", GrantKind::Organisation, ORG_RENNES),
        ("teleconsultation", GrantKind::Profession, "10"),
        ("teleconsultation", GrantKind::Profession, "60"),
    ];
    for (application, kind, value) in rules {
        auth.add_grant(&GrantRule {
            application: application.into(),
            kind,
            value: value.into(),
        })
        .await?;
    }
    Ok(())
}
