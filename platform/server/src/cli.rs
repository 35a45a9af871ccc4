//! The command line: subcommands and the administration commands that are not `serve`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, ArgAction, Command};
use megalis_audit::SigningKey;
use megalis_config::{Scope, Settings, global_args, scoped_args};

use crate::ServerError;
use crate::serve::{open_database, prepare_data_dir};

pub fn command() -> Command {
    let serve = scoped_args(
        Command::new("serve")
            .about("Run the platform: HTTPS (and optional plain HTTP) listeners, every service")
            .arg(
                Arg::new("demo")
                    .long("demo")
                    .action(ArgAction::SetTrue)
                    .help("Shorthand for --mode demo: seed the documented demo region"),
            ),
        Scope::Serve,
    );
    let config = Command::new("config")
        .about("Inspect the configuration")
        .subcommand_required(true)
        .subcommand(Command::new("show").about(
            "Print the effective configuration (secrets redacted) with where each value comes from",
        ));
    let audit = Command::new("audit")
        .about("Audit trail tools")
        .subcommand_required(true)
        .subcommand(Command::new("verify").about(
            "Walk the whole audit chain and its signed checkpoints; report the first altered, \
             inserted, deleted or truncated record (exit status 1)",
        ));
    global_args(
        Command::new("megalis")
            .version(env!("CARGO_PKG_VERSION"))
            .about("Megalis — plateforme régionale de e-santé de Bretagne")
            .long_about(
                "Megalis — the regional e-health platform of Brittany.\n\n\
                 Every option may also be set in the TOML file given by --config (key \
                 `section.key`) or by the environment variable MEGALIS_SECTION_KEY; flags win \
                 over the environment, which wins over the file.",
            )
            .subcommand_required(true)
            .arg_required_else_help(true),
    )
    .subcommand(serve)
    .subcommand(
        Command::new("migrate")
            .about("Apply database migrations (serve also does it at start), then exit"),
    )
    .subcommand(config)
    .subcommand(audit)
    .subcommand(crate::plugins::command())
    .subcommand(crate::directory::command())
    .subcommand(crate::admin::command())
}

pub async fn migrate(settings: Settings) -> Result<(), ServerError> {
    prepare_data_dir(&settings)?;
    let db = open_database(&settings)?;
    // A CLI run should not hang forever on a database that is down: give it a minute.
    db.migrate_when_available(Some(Duration::from_secs(60)))
        .await?;
    println!(
        "migrations applied ({})",
        megalis_store::redact_url(&settings.database_url)
    );
    db.close().await;
    Ok(())
}

/// Exit status: 0 intact, 1 tampering found, 2 could not verify (unreadable key, database down).
pub async fn audit_verify(settings: Settings) -> ExitCode {
    let outcome = async {
        let key = SigningKey::load(&settings.audit_signing_key)?;
        let db = open_database(&settings)?;
        let report = megalis_audit::verify(
            &db,
            &[key.verifying_key()],
            Some(settings.audit_checkpoint_file.as_path()),
        )
        .await?;
        db.close().await;
        Ok::<_, ServerError>(report)
    }
    .await;
    match outcome {
        Ok(report) => {
            println!("{report}");
            if report.problem.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("megalis: cannot verify the audit trail: {e}");
            ExitCode::from(2)
        }
    }
}
