//! The command line. Everything it runs is built in the library.

use std::process::ExitCode;
use std::sync::Arc;

mod cli;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command, Shell};
use token_broker::clock::Clock;
use token_broker::config::{self, Config, Environment};
#[cfg(feature = "dev-idp")]
use token_broker::dev_idp::{self, DevIdpConfig};
use token_broker::telemetry::build_info;
use token_broker::{server, telemetry};

/// Exit status for a configuration that does not load (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CheckConfig { config: path } => match load(&path) {
            Ok(config) => {
                if let Err(error) = store_environment(&config) {
                    eprintln!("{}: {error}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("ok");
                for line in config::where_state_lives(&config) {
                    println!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Serve { config } => match load(&config) {
            Ok(config) => serve(config),
            Err(code) => code,
        },
        #[cfg(feature = "dev-idp")]
        Command::DevIdp { listen, config } => dev_idp(listen, config.as_deref()),
        #[cfg(feature = "dev-idp")]
        Command::Demo {
            listen,
            idp_listen,
            store,
        } => demo(listen, idp_listen, store),
        Command::HashKey { generate } => hash_key(generate),
        Command::RotateKeys {
            config,
            activate_in,
        } => match load(&config) {
            Ok(config) => rotate_keys(&config, activate_in),
            Err(code) => code,
        },
        Command::Completions { shell } => completions(shell),
        Command::Admin(args) => cli::admin::run(args),
        Command::Healthcheck {
            url,
            config,
            timeout,
        } => healthcheck(url.as_deref(), config.as_deref(), timeout),
        Command::Man { dir } => man(dir.as_deref()),
        Command::CheckUpstream { config } => match load(&config) {
            Ok(config) => {
                let report = actix_web::rt::System::new()
                    .block_on(token_broker::upstream::check::check(&config));
                for line in &report.lines {
                    println!("{line}");
                }
                if report.ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(code) => code,
        },
    }
}

fn healthcheck(
    url: Option<&str>,
    config: Option<&std::path::Path>,
    timeout: std::time::Duration,
) -> ExitCode {
    use cli::healthcheck::{probe, target};
    match target(url, config).and_then(|url| probe(&url, timeout)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("unhealthy: {error}");
            ExitCode::FAILURE
        }
    }
}

fn completions(shell: Shell) -> ExitCode {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "token-broker", &mut script);
    // Written here rather than by the generator, which panics on a write error (a closed
    // pipe).
    match std::io::Write::write_all(&mut std::io::stdout(), &script) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cannot write the completion script: {error}");
            ExitCode::FAILURE
        }
    }
}

fn man(dir: Option<&std::path::Path>) -> ExitCode {
    let command = Cli::command();
    let written = match dir {
        Some(dir) => clap_mangen::generate_to(command, dir),
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cannot write the manual page: {error}");
            ExitCode::FAILURE
        }
    }
}

fn rotate_keys(config: &Config, activate_in: std::time::Duration) -> ExitCode {
    use token_broker::tokens::rotate::{RotateError, rotate_keys};
    match rotate_keys(config, Clock::system().unix(), activate_in) {
        Ok(kid) => {
            println!("{kid}");
            ExitCode::SUCCESS
        }
        Err(RotateError::Refused(reason)) => {
            eprintln!("{reason}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(RotateError::Failed(reason)) => {
            eprintln!("{reason}");
            ExitCode::FAILURE
        }
    }
}

fn hash_key(generate: bool) -> ExitCode {
    use token_broker::tokens::api_keys;
    let key = if generate {
        let key = api_keys::generate_key();
        println!("key:  {key}");
        println!("      (shown once: give it to the client and store it as a secret)");
        key
    } else {
        let mut line = String::new();
        if let Err(error) = std::io::stdin().read_line(&mut line) {
            eprintln!("cannot read the key from standard input: {error}");
            return ExitCode::FAILURE;
        }
        let key = line.trim_end_matches(['\r', '\n']).to_owned();
        if key.len() < 32 {
            eprintln!("refusing a key shorter than 32 characters: use --generate for a strong one");
            return ExitCode::FAILURE;
        }
        key
    };
    println!("hash: {}", api_keys::hash_key(&key));
    ExitCode::SUCCESS
}

#[cfg(feature = "dev-idp")]
fn demo(
    listen: std::net::SocketAddr,
    idp_listen: std::net::SocketAddr,
    store: token_broker::demo::store::DemoStore,
) -> ExitCode {
    let log = config::LogConfig {
        format: config::LogFormat::Pretty,
        level: "info".to_owned(),
    };
    if let Err(error) = telemetry::init_logging(&log) {
        eprintln!("cannot set up logging: {error}");
        return ExitCode::FAILURE;
    }
    let addrs = token_broker::demo::app::DemoAddrs {
        broker: listen,
        idp: idp_listen,
    };
    let result = actix_web::rt::System::new().block_on(token_broker::demo::app::run(
        addrs,
        store,
        wait_for_shutdown_signal(),
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "dev-idp")]
fn dev_idp(listen: std::net::SocketAddr, path: Option<&std::path::Path>) -> ExitCode {
    let config = match path.map(std::fs::read_to_string).transpose() {
        Err(error) => {
            eprintln!("cannot read dev IdP configuration: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
        Ok(None) => DevIdpConfig::default(),
        Ok(Some(text)) => match DevIdpConfig::from_toml(&text) {
            Ok(config) => config,
            Err(error) => {
                eprintln!("invalid dev IdP configuration: {error}");
                return ExitCode::from(EXIT_CONFIG);
            }
        },
    };
    let log = config::LogConfig {
        format: config::LogFormat::Pretty,
        level: "info".to_owned(),
    };
    if let Err(error) = telemetry::init_logging(&log) {
        eprintln!("cannot set up logging: {error}");
        return ExitCode::FAILURE;
    }
    let result = actix_web::rt::System::new().block_on(async move {
        let listener = std::net::TcpListener::bind(listen)
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let running =
            dev_idp::start(config, listener, Clock::system()).map_err(|e| e.to_string())?;
        println!("dev IdP (development only) at {}", running.url);
        running
            .serve_until(wait_for_shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// What the store needs from the machine rather than from the file: a `rediss://`
/// store's client reads the system's CA store on every connection.
fn store_environment(config: &Config) -> Result<(), token_broker::store::StoreError> {
    match &config.store.backend {
        config::StoreBackend::Redis { tls: Some(_), .. } => {
            token_broker::store::system_roots_readable()
        }
        _ => Ok(()),
    }
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    config::load_file(path, &Environment::from_process()).map_err(|error| {
        eprintln!("{}: {error}", path.display());
        ExitCode::from(EXIT_CONFIG)
    })
}

fn serve(config: Config) -> ExitCode {
    let traces =
        match telemetry::init_logging_and_traces(&config.log, config.telemetry.otlp.as_ref()) {
            Ok(traces) => traces,
            Err(error) => {
                eprintln!("cannot set up logging: {error}");
                return ExitCode::FAILURE;
            }
        };
    tracing::debug!(?config, "configuration loaded");
    for line in config::where_state_lives(&config) {
        tracing::info!("{line}");
    }
    let result = actix_web::rt::System::new().block_on(run(Arc::new(config)));
    // After the server: the spans of the last requests are queued by now.
    if let Some(traces) = traces {
        traces.shutdown();
    }
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
    let shutdown = shutdown_signal();
    let running = server::bind_and_start(config.clone())?;
    server::startup_checks(&running.state).await?;
    if let Some(management) = &running.management {
        tracing::info!(
            addr = %management.addr,
            routes = "/healthz /readyz /metrics /admin/*",
            "management port listening"
        );
    }
    tracing::info!(
        addr = %running.addr,
        management_addr = %running
            .management
            .as_ref()
            .map_or_else(|| "none (operational routes on this port)".to_owned(), |m| m.addr.to_string()),
        issuer = %config.server.public_url,
        version = build_info::VERSION,
        commit = build_info::COMMIT,
        profile = build_info::PROFILE,
        "listening"
    );
    running.serve_until(shutdown).await?;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C); the handlers are installed when it is
/// first polled.
#[cfg(feature = "dev-idp")]
async fn wait_for_shutdown_signal() {
    shutdown_signal().await;
}

/// Installs the SIGTERM and SIGINT handlers now — inside the runtime, before the broker
/// says it is listening, so a signal sent the moment it does is a graceful shutdown
/// rather than the default action — and resolves on either.
fn shutdown_signal() -> impl Future<Output = ()> + 'static {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        match handlers {
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
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
