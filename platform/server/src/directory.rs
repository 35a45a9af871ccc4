//! `megalis directory import FILE` and `megalis directory generate`: the directory of health
//! professionals from the command line, on the same database and audit trail as `serve`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use megalis_audit::{AuditLog, SigningKey};
use megalis_config::Settings;
use megalis_directory::{ImportOptions, import_file};

use crate::ServerError;
use crate::serve::{audit_settings, open_database, prepare_data_dir};

pub fn command() -> Command {
    Command::new("directory")
        .about("Directory of health professionals (Annuaire Santé)")
        .subcommand_required(true)
        .subcommand(
            Command::new("import")
                .about(
                    "Import a PS_LibreAcces_Personne_activite_*.txt extraction: create and update \
                     practitioners, organisations and activities; close (and audit) those the \
                     file no longer lists. Idempotent: importing the same file twice changes \
                     nothing. Exit status 0 when imported (malformed rows are listed), 1 when \
                     the file is unreadable, its header wrong or the database unavailable, 3 \
                     when closures were refused by the mass-closure guard.",
                )
                .arg(
                    Arg::new("file")
                        .value_name("FILE")
                        .required(true)
                        .value_parser(value_parser!(PathBuf)),
                )
                .arg(
                    Arg::new("allow-mass-closure")
                        .long("allow-mass-closure")
                        .action(ArgAction::SetTrue)
                        .help(
                            "Close entries even when the file lists fewer than 90% of the \
                             active practitioners (normally a sign of a truncated download)",
                        ),
                )
                .arg(
                    Arg::new("batch-rows")
                        .long("batch-rows")
                        .value_name("N")
                        .value_parser(value_parser!(usize))
                        .default_value("10000")
                        .help("Rows written per transaction"),
                ),
        )
        .subcommand(
            Command::new("generate")
                .about(
                    "Write a synthetic extraction of the same shape (invented practitioners and \
                     sites in Brittany) for tests and benchmarks; deterministic for a seed",
                )
                .arg(
                    Arg::new("rows")
                        .long("rows")
                        .value_name("N")
                        .value_parser(value_parser!(u64))
                        .default_value("1000"),
                )
                .arg(
                    Arg::new("seed")
                        .long("seed")
                        .value_name("S")
                        .value_parser(value_parser!(u64))
                        .default_value("1"),
                )
                .arg(
                    Arg::new("output")
                        .long("output")
                        .short('o')
                        .value_name("FILE")
                        .value_parser(value_parser!(PathBuf))
                        .help("Write here instead of standard output"),
                ),
        )
}

/// Exit status: 0 imported, 1 could not import, 3 imported but closures refused.
pub async fn import(settings: Settings, args: &ArgMatches) -> ExitCode {
    let file = args.get_one::<PathBuf>("file").expect("required").clone();
    let options = ImportOptions {
        allow_mass_closure: args.get_flag("allow-mass-closure"),
        batch_rows: *args.get_one::<usize>("batch-rows").expect("defaulted"),
        ..ImportOptions::default()
    };
    let outcome = async {
        // Check the file before anything else: a wrong path should not wait for a database.
        std::fs::File::open(&file)
            .map_err(|e| ServerError::Fatal(format!("cannot read {}: {e}", file.display())))?;
        prepare_data_dir(&settings)?;
        let db = open_database(&settings)?;
        db.migrate_when_available(Some(Duration::from_secs(60)))
            .await?;
        let key = SigningKey::load_or_create(&settings.audit_signing_key)?;
        let audit = AuditLog::start(db.clone(), key, audit_settings(&settings));
        let report = import_file(&db, &audit, &file, options).await;
        if let Err(e) = audit.shutdown().await {
            tracing::warn!(error = %e, "could not sign the audit chain head");
        }
        db.close().await;
        report.map_err(|e| ServerError::Fatal(e.to_string()))
    }
    .await;
    match outcome {
        Ok(report) => {
            print!("{report}");
            if report.closure_refused.is_some() {
                eprintln!(
                    "megalis: closures refused (see above); the rest of the file was imported"
                );
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("megalis: directory import of {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}

pub fn generate(args: &ArgMatches) -> ExitCode {
    let rows = *args.get_one::<u64>("rows").expect("defaulted");
    let seed = *args.get_one::<u64>("seed").expect("defaulted");
    let result = match args.get_one::<PathBuf>("output") {
        Some(path) => std::fs::File::create(path)
            .and_then(|f| megalis_directory::generate::write(f, rows, seed)),
        None => megalis_directory::generate::write(std::io::stdout().lock(), rows, seed),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("megalis: directory generate: {e}");
            ExitCode::FAILURE
        }
    }
}
