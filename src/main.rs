//! The command line. Everything it runs is built in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use token_broker::config::{self, Config, Environment};
use token_broker::{server, telemetry};

#[derive(Parser)]
#[command(
    name = "token-broker",
    version,
    about = "OAuth 2.1 broker for MCP servers in front of an OpenID provider"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the broker with the given configuration file.
    Serve {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate a configuration file (with TOKEN_BROKER__* overrides) and print "ok" or every problem.
    CheckConfig {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
}

/// Exit status for a configuration that does not load (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CheckConfig { config } => match load(&config) {
            Ok(_) => {
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Serve { config } => match load(&config) {
            Ok(config) => serve(config),
            Err(code) => code,
        },
    }
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    config::load_file(path, &Environment::from_process()).map_err(|error| {
        eprintln!("{}: {error}", path.display());
        ExitCode::from(EXIT_CONFIG)
    })
}

fn serve(config: Config) -> ExitCode {
    if let Err(error) = telemetry::init_logging(&config.log) {
        eprintln!("cannot set up logging: {error}");
        return ExitCode::FAILURE;
    }
    tracing::debug!(?config, "configuration loaded");
    let result = actix_web::rt::System::new().block_on(run(Arc::new(config)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "broker stopped with an error");
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Arc<Config>) -> Result<(), Box<dyn std::error::Error>> {
    let running = server::bind_and_start(config.clone())?;
    tracing::info!(
        addr = %running.addr,
        issuer = %config.server.public_url,
        version = env!("CARGO_PKG_VERSION"),
        "listening"
    );
    running.serve_until(wait_for_shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                tracing::warn!("cannot install signal handlers; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
