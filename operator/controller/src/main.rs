use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use megalis_operator::render::{crds_yaml, render_files};
use megalis_operator::run::{RunOptions, run};

/// Kubernetes operator of the Megalis regional e-health platform.
#[derive(Parser)]
#[command(name = "megalis-operator", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller.
    Run {
        /// Watch this namespace only (default: all namespaces).
        #[arg(long, env = "MEGALIS_OPERATOR_WATCH_NAMESPACE")]
        namespace: Option<String>,
        /// Address of /metrics, /healthz and /readyz.
        #[arg(
            long,
            env = "MEGALIS_OPERATOR_METRICS_LISTEN",
            default_value = "0.0.0.0:8080"
        )]
        metrics_listen: SocketAddr,
        /// Elect a leader through a Lease in this namespace (needed with more than one replica).
        #[arg(long, env = "MEGALIS_OPERATOR_LEASE_NAMESPACE")]
        lease_namespace: Option<String>,
        /// Identity of this replica in the Lease (the pod name).
        #[arg(long, env = "POD_NAME", default_value = "megalis-operator")]
        identity: String,
    },
    /// Print the CustomResourceDefinitions.
    Crds,
    /// Print every object the operator would apply for these resources.
    Render {
        /// YAML files holding one RegionalPlatform and any number of Plugins.
        #[arg(short = 'f', long = "file", required = true)]
        files: Vec<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds => crds_yaml().map(|yaml| print!("{yaml}")),
        Command::Render { files } => render_files(&files).map(|yaml| print!("{yaml}")),
        Command::Run {
            namespace,
            metrics_listen,
            lease_namespace,
            identity,
        } => {
            tracing_subscriber::fmt()
                .json()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .init();
            run(RunOptions {
                namespace,
                metrics_listen,
                lease: lease_namespace.map(|ns| (ns, identity)),
            })
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("megalis-operator: {error}");
            ExitCode::FAILURE
        }
    }
}
