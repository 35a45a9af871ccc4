//! The portal shell: server-rendered pages (askama), French first with English available, built
//! for WCAG 2.1 AA (a `lang` attribute, landmarks, a skip link, labels on every field, visible
//! focus, contrast of at least 4.5:1, error messages tied to their fields). No inline script or
//! style: the CSP is `script-src 'self'; style-src 'self'`, and the assets below are served from
//! the binary.
//!
//! This crate only renders; the server's handlers decide what to show and handle the forms.

use askama::Template;

mod documents;
mod patient_space;
mod patients;
mod publications;
mod sharing;
mod texts;
pub use documents::*;
pub use patient_space::*;
pub use patients::*;
pub use publications::*;
pub use sharing::*;
pub use texts::{Lang, Texts};

pub const CSS: &str = include_str!("../static/portal.css");
pub const JS: &str = include_str!("../static/portal.js");

/// One application tile of the launcher.
#[derive(Debug, Clone)]
pub struct Tile {
    pub id: String,
    pub name: String,
    pub url: String,
}

/// The header's view of the signed-in user.
#[derive(Debug, Clone)]
pub struct UserBar {
    pub display_name: String,
    pub is_admin: bool,
    /// May open the patient pages (a professional or identity-vigilance staff; the pages
    /// themselves still ask for a second factor).
    pub patients: bool,
    /// Identity-vigilance staff: the review queue.
    pub identity_staff: bool,
    pub csrf: String,
}

/// A plugin's HTML fragment inside the portal shell (header, navigation, language, footer).
/// The fragment is the plugin's own markup, served from the platform's origin under the same
/// content security policy as every page; the shell adds nothing the plugin could not.
#[derive(Template)]
#[template(path = "app.html")]
pub struct AppPage<'a> {
    pub t: &'a Texts,
    pub user: Option<UserBar>,
    /// The plugin id, for styling and tests.
    pub app: String,
    pub title: String,
    pub body: String,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub t: &'a Texts,
    pub user: Option<UserBar>,
    pub csrf: String,
    pub next: String,
    pub username: String,
    pub error: Option<String>,
    /// The CPS card listener is configured (`mtls_listen`).
    pub card_login: bool,
    /// An upstream provider is configured (Pro Santé Connect).
    pub federated_login: bool,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    pub t: &'a Texts,
    pub user: Option<UserBar>,
    pub tiles: Vec<Tile>,
    pub second_factor: bool,
}

#[derive(Template)]
#[template(path = "profile.html")]
pub struct ProfilePage<'a> {
    pub t: &'a Texts,
    pub user: Option<UserBar>,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    pub username: String,
    pub national_id: Option<String>,
    pub organisation: Option<String>,
    pub totp_enabled: bool,
    /// During enrolment: the base32 secret and the `otpauth://` URI.
    pub enrolment: Option<(String, String)>,
    pub recovery_codes: Vec<String>,
    pub message: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AccountRow {
    pub username: String,
    pub kind: String,
    pub display_name: String,
    pub national_id: String,
    pub organisation: String,
    pub roles: String,
    pub totp: bool,
    pub disabled: bool,
}

#[derive(Template)]
#[template(path = "admin_accounts.html")]
pub struct AdminAccountsPage<'a> {
    pub t: &'a Texts,
    pub user: Option<UserBar>,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    pub accounts: Vec<AccountRow>,
    pub message: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GrantRow {
    pub application: String,
    pub kind: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "admin_grants.html")]
pub struct AdminGrantsPage<'a> {
    pub t: &'a Texts,
    pub user: Option<UserBar>,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    pub grants: Vec<GrantRow>,
    pub applications: Vec<String>,
    pub kinds: Vec<&'static str>,
    pub message: Option<String>,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_page_is_accessible_and_escapes_input() {
        for lang in [Lang::Fr, Lang::En] {
            let html = LoginPage {
                t: Texts::of(lang),
                user: None,
                csrf: "tok".into(),
                next: "/".into(),
                username: "<script>alert(1)</script>".into(),
                error: Some("Identifiant ou mot de passe incorrect".into()),
                card_login: true,
                federated_login: true,
            }
            .render()
            .unwrap();
            assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())));
            assert!(!html.contains("<script>alert"), "user input is escaped");
            assert!(!html.contains("<script>") || html.contains("src=\"/static/portal.js\""));
            for landmark in [
                "<header",
                "<main id=\"contenu\"",
                "<footer",
                "href=\"#contenu\"",
            ] {
                assert!(html.contains(landmark), "{landmark}");
            }
            // Every input has a label.
            for id in ["username", "password", "otp"] {
                assert!(html.contains(&format!("for=\"{id}\"")), "label for {id}");
                assert!(html.contains(&format!("id=\"{id}\"")), "input {id}");
            }
            assert!(html.contains("role=\"alert\""), "error announced");
            assert!(html.contains("name=\"csrf\" value=\"tok\""));
            assert!(!html.contains(" style="), "no inline style (CSP)");
        }
        let fr = LoginPage {
            t: Texts::of(Lang::Fr),
            user: None,
            csrf: String::new(),
            next: "/".into(),
            username: String::new(),
            error: None,
            card_login: true,
            federated_login: true,
        }
        .render()
        .unwrap();
        assert!(fr.contains("Se connecter avec ma carte CPS"));
        assert!(fr.contains("Pro Santé Connect"));
        // Methods the platform does not offer are not shown.
        let password_only = LoginPage {
            t: Texts::of(Lang::Fr),
            user: None,
            csrf: String::new(),
            next: "/".into(),
            username: String::new(),
            error: None,
            card_login: false,
            federated_login: false,
        }
        .render()
        .unwrap();
        assert!(!password_only.contains("cps-login") && !password_only.contains("psc-login"));
    }

    #[test]
    fn launcher_lists_only_given_tiles() {
        let html = HomePage {
            t: Texts::of(Lang::Fr),
            user: Some(UserBar {
                display_name: "Dr Anne Le Goff".into(),
                is_admin: false,
                patients: true,
                identity_staff: false,
                csrf: "c".into(),
            }),
            tiles: vec![Tile {
                id: "breizh-rein".into(),
                name: "Breizh Rein".into(),
                url: "https://rein.test/".into(),
            }],
            second_factor: false,
        }
        .render()
        .unwrap();
        assert!(html.contains("Breizh Rein"));
        assert!(html.contains("data-app=\"breizh-rein\""));
        assert!(
            !html.contains("/admin/accounts"),
            "no admin link for clinicians"
        );
    }
}
