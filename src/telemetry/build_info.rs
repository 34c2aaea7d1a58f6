//! What this binary is: the crate version, the git commit it was built from and the
//! build profile, as `build.rs` found them (`unknown` where it could not tell). Shown
//! by `token-broker --version`, logged at start-up and exported as
//! `token_broker_build_info`.

/// The crate version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit abbreviated to 12 hex digits, or `unknown` (built outside a git checkout
/// without `TOKEN_BROKER_GIT_COMMIT`).
pub const COMMIT: &str = env!("TOKEN_BROKER_GIT_COMMIT");

/// `release` or `debug`.
pub const PROFILE: &str = env!("TOKEN_BROKER_BUILD_PROFILE");

/// The line `--version` prints after the program name.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TOKEN_BROKER_GIT_COMMIT"),
    ", ",
    env!("TOKEN_BROKER_BUILD_PROFILE"),
    " build)"
);
