//! The command line's definitions (clap): the subcommands and their arguments.
//! `main.rs` runs them; `admin.rs` is the admin API's client.

pub mod admin;
pub mod healthcheck;
mod table;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use token_broker::telemetry::build_info;

#[derive(Parser)]
#[command(
    name = "token-broker",
    version = build_info::VERSION_LINE,
    about = "OAuth 2.1 broker for MCP servers in front of an OpenID provider"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the broker with the given configuration file.
    Serve {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    #[cfg(feature = "dev-idp")]
    /// Run the demo: the development IdP, the broker wired to it, and an example MCP
    /// server at /mcp protected by the broker. Prints what to try next.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value = "127.0.0.1:8081", value_name = "ADDR")]
        idp_listen: std::net::SocketAddr,
        /// Where the broker keeps its state: `memory` (default), `sqlite:PATH` (a file,
        /// with its keys beside it: the demo can be restarted) or `redis:URL`
        /// (`redis:redis://HOST:PORT`, or the URL alone).
        #[arg(long, default_value = "memory", value_name = "STORE")]
        store: token_broker::demo::store::DemoStore,
    },
    #[cfg(feature = "dev-idp")]
    /// Run the development OpenID provider (development and tests only: no login form,
    /// an unauthenticated control API under /_dev/).
    DevIdp {
        #[arg(long, default_value = "127.0.0.1:8081", value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// TOML file with users, clients, keys, lifetimes and faults (all optional).
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Check the upstream provider with a configuration: discovery, JWKS, and the
    /// broker's client credentials. Prints one line per step; exit 1 on failure.
    CheckUpstream {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the `sha256:` hash of an API key read from standard input (one line), for
    /// `[[api_keys]] hash`; with --generate, make a new random key and print both.
    HashKey {
        #[arg(long)]
        generate: bool,
    },
    /// Add a new signing key — to the store, or to `tokens.key_file` with the memory
    /// store — active after --activate-in (so every replica publishes it before any
    /// signs with it); the key it replaces stays published for `tokens.key_grace` after
    /// that. Prints the new kid.
    RotateKeys {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// How long until the new key signs, e.g. `1h`: at least 5m30s (brokers re-read
        /// the store's keys every 30 s, and /jwks.json may be cached for 5 min); with a
        /// key file, every replica must also restart within it.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        activate_in: std::time::Duration,
    },
    /// Validate a configuration file (with TOKEN_BROKER__* overrides) and print "ok" and
    /// where the broker keeps its state, or every problem.
    CheckConfig {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print a completion script for SHELL, generated from these definitions: e.g.
    /// `token-broker completions bash > /etc/bash_completion.d/token-broker`.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Probe a running broker for a container health check: GET --url (or `/readyz`
    /// on the management port of --config, else on its `listen`; 0.0.0.0 and :: mean
    /// loopback) and exit 0 on a 2xx within --timeout, 1 otherwise with the reason on
    /// stderr. Plain HTTP only; needs no shell or curl.
    Healthcheck {
        /// The URL to GET, e.g. http://127.0.0.1:9090/healthz.
        #[arg(long, value_name = "URL", required_unless_present = "config")]
        url: Option<String>,
        /// The broker's configuration (with TOKEN_BROKER__* overrides), read for the
        /// address to probe when --url is not given.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// How long the probe may take in all, e.g. `2s`.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Talk to a running broker's admin API (`admin.token`): list and look up clients,
    /// grants and logins in progress, revoke grants, offboard a user, delete a client.
    Admin(admin::AdminArgs),
    /// Print the manual page token-broker(1) in roff; with --dir, write it and one page
    /// per command (token-broker-serve(1), …) into DIR instead.
    Man {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The shells `completions` writes for.
#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}
