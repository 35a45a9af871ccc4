//! `megalis admin …`: accounts, OAuth clients and application grants from the command line, on
//! the same database (`--data-dir`/`--database-url`) as `serve`. Every change is audited with
//! the operating-system user as actor.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};
use megalis_audit::{Actor, AuditLog, AuditRecord, Outcome, SigningKey};
use megalis_auth::grants::{Application, GrantKind, GrantRule};
use megalis_auth::oidc::{GrantType, NewClient};
use megalis_auth::{AccountKind, Auth, NewAccount};
use megalis_config::Settings;

use crate::ServerError;
use crate::serve::{audit_settings, open_database, prepare_data_dir};

fn username() -> Arg {
    Arg::new("username")
        .long("username")
        .required(true)
        .help("User name (login)")
}

fn password_file() -> Arg {
    Arg::new("password-file")
        .long("password-file")
        .value_parser(clap::value_parser!(PathBuf))
        .help(
            "File holding the password (first line); without it, the first line of standard input",
        )
}

fn authority_arg() -> Arg {
    Arg::new("authority")
        .long("authority")
        .value_name("OID")
        .action(ArgAction::Append)
        .help(
            "Assigning authority OID (PID-3.4 / FHIR identifier system), e.g. the \
             establishment's 1.2.250.1.71.4.2.1 or urn:oid:1.2.250.1.71.4.2.1",
        )
}

fn rule_args(cmd: Command) -> Command {
    cmd.arg(
        Arg::new("application")
            .long("application")
            .required(true)
            .help("Application id: a plugin id or an OIDC client id"),
    )
    .arg(
        Arg::new("profession")
            .long("profession")
            .help("TRE_G15 profession code (10 = médecin)"),
    )
    .arg(
        Arg::new("specialty")
            .long("specialty")
            .help("TRE_R38 specialty code"),
    )
    .arg(
        Arg::new("organisation")
            .long("organisation")
            .help("FINESS or SIRET of an organisation"),
    )
    .arg(Arg::new("role").long("role").help("Platform role"))
    .arg(
        Arg::new("individual")
            .long("individual")
            .help("User name, account id or national id (8 + RPPS); a user name is stored as the account's national id (or id)"),
    )
    .arg(
        Arg::new("everyone")
            .long("everyone")
            .action(ArgAction::SetTrue)
            .help("Every authenticated user"),
    )
    .group(
        clap::ArgGroup::new("rule")
            .args([
                "profession",
                "specialty",
                "organisation",
                "role",
                "individual",
                "everyone",
            ])
            .required(true),
    )
}

pub fn command() -> Command {
    let user = Command::new("user")
        .about("Accounts: professionals, local staff, administrators")
        .subcommand_required(true)
        .subcommand(
            Command::new("add")
                .about("Create an account")
                .arg(username())
                .arg(Arg::new("kind").long("kind").required(true).value_parser([
                    "professional",
                    "staff",
                    "admin",
                ]))
                .arg(
                    Arg::new("name")
                        .long("name")
                        .required(true)
                        .help("Display name"),
                )
                .arg(
                    Arg::new("national-id")
                        .long("national-id")
                        .help("8 + RPPS (professionals)"),
                )
                .arg(
                    Arg::new("organisation")
                        .long("organisation")
                        .help("FINESS/SIRET (staff)"),
                )
                .arg(
                    Arg::new("role")
                        .long("role")
                        .action(ArgAction::Append)
                        .help("Role (repeatable)"),
                )
                .arg(password_file()),
        )
        .subcommand(
            Command::new("disable")
                .about("Disable an account: sessions and tokens end at once")
                .arg(username()),
        )
        .subcommand(
            Command::new("enable")
                .about("Re-enable a disabled account")
                .arg(username()),
        )
        .subcommand(
            Command::new("reset-password")
                .about("Set a new password (policy checked), lift any lockout, end sessions")
                .arg(username())
                .arg(password_file()),
        )
        .subcommand(Command::new("list").about("List accounts"));
    let client = Command::new("client")
        .about("OAuth 2.0 / OpenID Connect clients")
        .subcommand_required(true)
        .subcommand(
            Command::new("add")
                .about("Register a client (also an application for grants and the launcher)")
                .arg(Arg::new("id").long("id").required(true))
                .arg(
                    Arg::new("name")
                        .long("name")
                        .help("Display name [default: the id]"),
                )
                .arg(
                    Arg::new("secret-file")
                        .long("secret-file")
                        .required(true)
                        .value_parser(clap::value_parser!(PathBuf))
                        .help("File holding the client secret (at least 32 random characters)"),
                )
                .arg(
                    Arg::new("grant")
                        .long("grant")
                        .required(true)
                        .action(ArgAction::Append)
                        .value_parser(["client_credentials", "authorization_code"]),
                )
                .arg(
                    Arg::new("redirect-uri")
                        .long("redirect-uri")
                        .action(ArgAction::Append),
                )
                .arg(
                    Arg::new("post-logout-redirect-uri")
                        .long("post-logout-redirect-uri")
                        .action(ArgAction::Append),
                )
                .arg(
                    Arg::new("scope")
                        .long("scope")
                        .action(ArgAction::Append)
                        .num_args(1..)
                        .help("Allowed scopes, e.g. openid user/Patient.rs system/Patient.rs"),
                )
                .arg(
                    Arg::new("launch-url")
                        .long("launch-url")
                        .help("Where the launcher sends users"),
                )
                .arg(
                    Arg::new("certificate")
                        .long("certificate")
                        .value_name("PEM")
                        .value_parser(clap::value_parser!(PathBuf))
                        .help(
                            "Client certificate (PEM) of a system client: it may then \
                             authenticate with it on the mutual-TLS listener, and its tokens \
                             obtained there are bound to it (RFC 8705)",
                        ),
                )
                .arg(authority_arg().required(false)),
        )
        .subcommand(
            Command::new("authority")
                .about(
                    "Assigning authorities (identifier domains) a system client may feed \
                     patient identities under",
                )
                .subcommand_required(true)
                .subcommand(
                    Command::new("add")
                        .about("Allow the client to feed identifiers of this authority")
                        .arg(Arg::new("id").long("id").required(true))
                        .arg(authority_arg().required(true)),
                )
                .subcommand(
                    Command::new("remove")
                        .about("Withdraw it (applies at once to a running server)")
                        .arg(Arg::new("id").long("id").required(true))
                        .arg(authority_arg().required(true)),
                )
                .subcommand(
                    Command::new("list")
                        .about("The bindings of one client")
                        .arg(Arg::new("id").long("id").required(true)),
                ),
        )
        .subcommand(
            Command::new("revoke")
                .about("Revoke a client: its tokens are refused at once")
                .arg(Arg::new("id").long("id").required(true)),
        );
    let grant = Command::new("grant")
        .about("Per-application authorisation rules")
        .subcommand_required(true)
        .subcommand(rule_args(
            Command::new("add").about("Open an application to a group"),
        ))
        .subcommand(rule_args(Command::new("remove").about("Remove a rule")))
        .subcommand(Command::new("list").about("List the rules"));
    Command::new("admin")
        .about("Administration: accounts, OAuth clients, application grants (audited)")
        .subcommand_required(true)
        .subcommand(user)
        .subcommand(client)
        .subcommand(grant)
}

/// The RFC 8705 thumbprint of the first certificate of a PEM file.
fn certificate_thumbprint(path: &PathBuf) -> Result<String, ServerError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let cert = CertificateDer::pem_file_iter(path)
        .map_err(|e| ServerError::Fatal(format!("{}: {e}", path.display())))?
        .next()
        .ok_or_else(|| {
            ServerError::Fatal(format!("{}: no CERTIFICATE in the file", path.display()))
        })?
        .map_err(|e| ServerError::Fatal(format!("{}: {e}", path.display())))?;
    Ok(megalis_auth::oidc::certificate_thumbprint(cert.as_ref()))
}

fn read_secret(path: Option<&PathBuf>) -> Result<String, ServerError> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| ServerError::Fatal(format!("{}: {e}", p.display())))?,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| ServerError::Fatal(format!("standard input: {e}")))?;
            line
        }
    };
    Ok(text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r')
        .to_string())
}

fn strings(m: &ArgMatches, id: &str) -> Vec<String> {
    m.get_many::<String>(id)
        .map(|v| {
            v.flat_map(|s| s.split_whitespace().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn rule_of(m: &ArgMatches) -> GrantRule {
    let application = m
        .get_one::<String>("application")
        .cloned()
        .unwrap_or_default();
    let pick = [
        ("profession", GrantKind::Profession),
        ("specialty", GrantKind::Specialty),
        ("organisation", GrantKind::Organisation),
        ("role", GrantKind::Role),
        ("individual", GrantKind::Individual),
    ];
    for (id, kind) in pick {
        if let Some(v) = m.get_one::<String>(id) {
            return GrantRule {
                application,
                kind,
                value: v.clone(),
            };
        }
    }
    GrantRule {
        application,
        kind: GrantKind::Everyone,
        value: String::new(),
    }
}

/// Runs `megalis admin <path…>`.
pub async fn run(path: &[&str], leaf: &ArgMatches, settings: Settings) -> Result<(), ServerError> {
    prepare_data_dir(&settings)?;
    let db = open_database(&settings)?;
    db.migrate_when_available(Some(Duration::from_secs(60)))
        .await?;
    let key = SigningKey::load_or_create(&settings.audit_signing_key)?;
    let audit = AuditLog::start(db.clone(), key, audit_settings(&settings));
    let demo =
        (settings.mode != megalis_config::Mode::Production).then(|| crate::demo::directory(true));
    let directory = std::sync::Arc::new(crate::http::directory_lookup::DirectoryLookup::new(
        db.clone(),
        demo,
    ));
    let auth = Auth::start(db.clone(), crate::http::auth_settings(&settings), directory).await?;
    let result = execute(path, leaf, &auth).await;
    // Every change is audited, successful or refused, before the command reports.
    let operator = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let (action, object, outcome, detail) = match &result {
        Ok(done) => (
            done.action,
            done.object.clone(),
            Outcome::Success,
            done.detail.clone(),
        ),
        Err(e) => (
            "failed",
            String::new(),
            Outcome::Failure,
            format!("{}: {e}", path.join(" ")),
        ),
    };
    if !action.is_empty() {
        let mut actor = Actor::new(format!("cli:{operator}"));
        actor.roles = vec!["admin-cli".into()];
        let record = AuditRecord::new(actor, format!("admin.{action}"), "admin", outcome)
            .with_object_id(object)
            .with_detail(detail);
        audit.append(record).await?;
    }
    audit.shutdown().await?;
    db.close().await;
    let done = result?;
    println!("{}", done.message);
    Ok(())
}

struct Done {
    action: &'static str,
    object: String,
    detail: String,
    message: String,
}

async fn execute(path: &[&str], m: &ArgMatches, auth: &Auth) -> Result<Done, ServerError> {
    let user = || m.get_one::<String>("username").cloned().unwrap_or_default();
    let done = |action, object: String, detail: String, message: String| Done {
        action,
        object,
        detail,
        message,
    };
    Ok(match path {
        ["admin", "user", "add"] => {
            let kind = AccountKind::parse(
                m.get_one::<String>("kind")
                    .map(String::as_str)
                    .unwrap_or(""),
            )
            .ok_or_else(|| ServerError::Fatal("unknown kind".into()))?;
            let password = read_secret(m.get_one::<PathBuf>("password-file"))?;
            let a = megalis_auth::account::create(
                &auth.db,
                &NewAccount {
                    username: user(),
                    kind,
                    national_id: m.get_one::<String>("national-id").cloned(),
                    organisation: m.get_one::<String>("organisation").cloned(),
                    display_name: m.get_one::<String>("name").cloned().unwrap_or_default(),
                    roles: strings(m, "role"),
                    password: Some(password),
                },
            )
            .await?;
            done(
                "user.add",
                a.username.clone(),
                format!("kind={}", kind.as_str()),
                format!("account {} created (id {})", a.username, a.id),
            )
        }
        ["admin", "user", "disable"] => {
            let a = auth.set_account_disabled(&user(), true).await?;
            done(
                "user.disable",
                a.username.clone(),
                String::new(),
                format!(
                    "account {} disabled; its sessions and tokens ended",
                    a.username
                ),
            )
        }
        ["admin", "user", "enable"] => {
            let a = auth.set_account_disabled(&user(), false).await?;
            done(
                "user.enable",
                a.username.clone(),
                String::new(),
                format!("account {} enabled", a.username),
            )
        }
        ["admin", "user", "reset-password"] => {
            let password = read_secret(m.get_one::<PathBuf>("password-file"))?;
            let a = auth.reset_password(&user(), &password).await?;
            done(
                "user.reset-password",
                a.username.clone(),
                String::new(),
                format!(
                    "password of {} reset; lockout lifted, sessions ended",
                    a.username
                ),
            )
        }
        ["admin", "user", "list"] => {
            let mut out = String::new();
            for a in megalis_auth::account::list(&auth.db).await? {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\n",
                    a.username,
                    a.kind.as_str(),
                    a.national_id.unwrap_or_default(),
                    a.organisation.unwrap_or_default(),
                    if a.totp_enabled { "totp" } else { "-" },
                    if a.disabled { "disabled" } else { "active" }
                ));
            }
            done("", String::new(), String::new(), out.trim_end().to_string())
        }
        ["admin", "client", "add"] => {
            let id = m.get_one::<String>("id").cloned().unwrap_or_default();
            let secret = read_secret(m.get_one::<PathBuf>("secret-file"))?;
            let mut grant_types: Vec<GrantType> = strings(m, "grant")
                .iter()
                .filter_map(|g| GrantType::parse(g))
                .collect();
            if grant_types.contains(&GrantType::AuthorizationCode) {
                grant_types.push(GrantType::RefreshToken);
            }
            let name = m
                .get_one::<String>("name")
                .cloned()
                .unwrap_or_else(|| id.clone());
            let launch_url = m.get_one::<String>("launch-url").cloned();
            let scopes = strings(m, "scope");
            // Read before registering: a bad file must not leave a half-registered client.
            let certificate = m
                .get_one::<PathBuf>("certificate")
                .map(certificate_thumbprint)
                .transpose()?;
            let authorities = strings(m, "authority")
                .iter()
                .map(|a| megalis_auth::oidc::canonical_authority(a))
                .collect::<Result<Vec<_>, _>>()?;
            megalis_auth::oidc::add_client(
                &auth.db,
                &NewClient {
                    id: id.clone(),
                    name: name.clone(),
                    secret,
                    grant_types: grant_types.clone(),
                    redirect_uris: strings(m, "redirect-uri"),
                    post_logout_redirect_uris: strings(m, "post-logout-redirect-uri"),
                    scopes: scopes.clone(),
                    launch_url: launch_url.clone(),
                },
            )
            .await?;
            if let Some(thumbprint) = &certificate {
                megalis_auth::oidc::set_client_certificate(&auth.db, &id, Some(thumbprint)).await?;
            }
            for authority in &authorities {
                auth.bind_authority(&id, authority).await?;
            }
            megalis_auth::grants::register_application(
                &auth.db,
                &Application {
                    id: id.clone(),
                    name,
                    launch_url,
                },
            )
            .await?;
            let grants: Vec<&str> = grant_types.iter().map(|g| g.as_str()).collect();
            let mut bound = certificate
                .map(|t| format!(" certificate x5t#S256={t}"))
                .unwrap_or_default();
            if !authorities.is_empty() {
                bound.push_str(&format!(" authorities={}", authorities.join(",")));
            }
            done(
                "client.add",
                id.clone(),
                format!(
                    "grants={} scopes={}{bound}",
                    grants.join(","),
                    scopes.join(" ")
                ),
                format!("client {id} registered"),
            )
        }
        ["admin", "client", "revoke"] => {
            let id = m.get_one::<String>("id").cloned().unwrap_or_default();
            if !auth.revoke_client(&id).await? {
                return Err(megalis_auth::AuthError::NotFound(format!("client {id}")).into());
            }
            done(
                "client.revoke",
                id.clone(),
                String::new(),
                format!("client {id} revoked; its tokens are refused"),
            )
        }
        ["admin", "client", "authority", "add"] | ["admin", "client", "authority", "remove"] => {
            let id = m.get_one::<String>("id").cloned().unwrap_or_default();
            let add = path[3] == "add";
            let mut changed = Vec::new();
            for given in strings(m, "authority") {
                let authority = megalis_auth::oidc::canonical_authority(&given)?;
                let did = if add {
                    auth.bind_authority(&id, &authority).await?
                } else {
                    auth.unbind_authority(&id, &authority).await?
                };
                changed.push(match (add, did) {
                    (true, true) => format!("{id} may now feed {authority}"),
                    (true, false) => format!("{id} was already bound to {authority}"),
                    (false, true) => format!("{id} may no longer feed {authority}"),
                    (false, false) => format!("{id} was not bound to {authority}"),
                });
            }
            done(
                if add {
                    "client.authority.add"
                } else {
                    "client.authority.remove"
                },
                id.clone(),
                strings(m, "authority").join(","),
                changed.join("\n"),
            )
        }
        ["admin", "client", "authority", "list"] => {
            let id = m.get_one::<String>("id").cloned().unwrap_or_default();
            if megalis_auth::oidc::client(&auth.db, &id).await?.is_none() {
                return Err(megalis_auth::AuthError::NotFound(format!("client {id}")).into());
            }
            done(
                "",
                String::new(),
                String::new(),
                auth.authorities_of(&id).join("\n"),
            )
        }
        ["admin", "grant", "add"] | ["admin", "grant", "remove"] => {
            let rule = auth.resolve_grant(&rule_of(m)).await?;
            let add = path[2] == "add";
            let changed = if add {
                auth.add_grant(&rule).await?
            } else {
                auth.remove_grant(&rule).await?
            };
            let detail = format!("{}={}", rule.kind.as_str(), rule.value);
            let message = match (add, changed) {
                (true, true) => format!("{} opened to {detail}", rule.application),
                (true, false) => format!("{} was already open to {detail}", rule.application),
                (false, true) => format!("rule {detail} removed from {}", rule.application),
                (false, false) => format!("{} had no rule {detail}", rule.application),
            };
            done(
                if add { "grant.add" } else { "grant.remove" },
                rule.application.clone(),
                detail,
                message,
            )
        }
        ["admin", "grant", "list"] => {
            let lines: Vec<String> = auth
                .all_grants()
                .into_iter()
                .map(|g| format!("{}\t{}\t{}", g.application, g.kind.as_str(), g.value))
                .collect();
            done("", String::new(), String::new(), lines.join("\n"))
        }
        _ => unreachable!("clap requires a known admin subcommand"),
    })
}
