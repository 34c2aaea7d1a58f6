//! Loading: the file (or text) read as TOML, `TOKEN_BROKER__…` overrides applied,
//! each section taken out and checked by its module, unknown sections named, and the
//! typed [`Config`] returned only when no problem was found.

use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Table;

use super::{
    Config, ConfigError, Environment, Problem, TokenMode, admin, api_keys, clients, enterprise,
    exchange, forward_auth, gateway, introspection, login, raw, registration, resources, sections,
    store, telemetry,
};

/// Reads and validates the file at `path`, applying `TOKEN_BROKER__…` overrides from `env`.
/// Relative paths in it (`store.path`, `store.key_file`, `tokens.key_file`) are taken
/// from the file's directory, where the default store lives too.
pub fn load_file(path: &Path, env: &Environment) -> Result<Config, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    let absolute = std::path::absolute(path).map_err(read_error)?;
    let dir = absolute.parent().unwrap_or(Path::new("/"));
    load_text(&text, env, Some(dir))
}

/// Validates configuration text, applying `TOKEN_BROKER__…` overrides from `env`. With
/// no file there is no directory to keep state in: the default store is `memory`,
/// and relative paths are taken from the working directory.
pub fn load_str(text: &str, env: &Environment) -> Result<Config, ConfigError> {
    load_text(text, env, None)
}

fn load_text(text: &str, env: &Environment, dir: Option<&Path>) -> Result<Config, ConfigError> {
    let mut root: Table = toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    let mut problems = Vec::new();
    env.apply_overrides(&mut root, &mut problems);

    let server = take_section::<raw::RawServer>(&mut root, "server", &mut problems)
        .and_then(|raw| sections::server(raw, &mut problems));
    let upstream = take_section::<raw::RawUpstream>(&mut root, "upstream", &mut problems)
        .and_then(|raw| sections::upstream(raw, env, &mut problems));
    let verify = take_section::<raw::RawVerify>(&mut root, "verify", &mut problems)
        .and_then(|raw| sections::verify(raw, &mut problems));
    let resources = take_list::<raw::RawResource>(&mut root, "resources", &mut problems)
        .and_then(|raw| resources::resources(raw, &mut problems));
    // The groups the allow rules name survive the cap on a user's groups.
    let upstream = upstream.map(|mut upstream| {
        for rule in resources.iter().flatten().filter_map(|r| r.allow.as_ref()) {
            for group in rule.groups() {
                if !upstream.claims.ruled_groups.contains(group) {
                    upstream.claims.ruled_groups.push(group.clone());
                }
            }
        }
        upstream
    });
    let api_keys = take_list::<raw::RawApiKey>(&mut root, "api_keys", &mut problems)
        .and_then(|raw| api_keys::api_keys(raw, &mut problems));
    let registration =
        take_section::<raw::RawRegistration>(&mut root, "registration", &mut problems)
            .and_then(|raw| registration::registration(raw, &mut problems));
    let sessions = take_section::<raw::RawSessions>(&mut root, "sessions", &mut problems)
        .and_then(|raw| login::sessions(raw, &mut problems));
    let consent = take_section::<raw::RawConsent>(&mut root, "consent", &mut problems)
        .and_then(|raw| login::consent(raw, env, &mut problems));
    let tokens = take_section::<raw::RawTokens>(&mut root, "tokens", &mut problems)
        .and_then(|raw| login::tokens(raw, dir, &mut problems));
    let refresh = take_section::<raw::RawRefresh>(&mut root, "refresh", &mut problems)
        .and_then(|raw| login::refresh(raw, &mut problems));
    let exchange = take_section::<exchange::RawExchange>(&mut root, "exchange", &mut problems)
        .and_then(|raw| exchange::exchange(raw, env, &mut problems));
    let admin = take_section::<admin::RawAdmin>(&mut root, "admin", &mut problems)
        .and_then(|raw| admin::admin(raw, env, &mut problems));
    let audit = take_section::<admin::RawAudit>(&mut root, "audit", &mut problems)
        .and_then(|raw| admin::audit(raw, env, &mut problems));
    let forward_auth =
        take_section::<forward_auth::RawForwardAuth>(&mut root, "forward_auth", &mut problems)
            .and_then(|raw| forward_auth::forward_auth(raw, &mut problems));
    let introspection =
        take_section::<introspection::RawIntrospection>(&mut root, "introspection", &mut problems)
            .and_then(|raw| introspection::introspection(raw, &mut problems));
    let scope_cache = take_section::<admin::RawScopeCache>(&mut root, "scope_cache", &mut problems)
        .and_then(|raw| admin::scope_cache(raw, &mut problems));
    let store = take_section::<store::RawStore>(&mut root, "store", &mut problems)
        .and_then(|raw| store::store(raw, env, dir, &mut problems));
    let log = take_section::<raw::RawLog>(&mut root, "log", &mut problems)
        .and_then(|raw| sections::log(raw, &mut problems));
    let telemetry = take_section::<telemetry::RawTelemetry>(&mut root, "telemetry", &mut problems)
        .and_then(|raw| telemetry::telemetry(raw, env, &mut problems));
    let gateways = take_list::<gateway::RawGateway>(&mut root, "gateway", &mut problems)
        .and_then(|raw| gateway::gateways(raw, resources.as_deref(), &mut problems));
    let enterprise =
        take_section::<enterprise::RawEnterprise>(&mut root, "enterprise", &mut problems)
            .and_then(|raw| enterprise::enterprise(raw, &mut problems));
    if let (Some(enterprise), Some(tokens)) = (&enterprise, &tokens)
        && !enterprise.issuers.is_empty()
        && tokens.mode == TokenMode::Passthrough
    {
        problems.push(Problem::new(
            "enterprise.issuers",
            "an ID-JAG grant has no provider token to hand on: use tokens.mode = \"broker\"",
        ));
    }
    let resource_uris: Option<Vec<String>> = resources
        .as_ref()
        .map(|list| list.iter().map(|r| r.uri.clone()).collect());
    let clients = take_list::<clients::RawClient>(&mut root, "clients", &mut problems)
        .and_then(|raw| clients::clients(raw, resource_uris.as_deref(), env, &mut problems));
    for unknown in root.keys() {
        problems.push(Problem::new(
            unknown.clone(),
            "unknown section (expected server, upstream, verify, resources, api_keys, registration, sessions, consent, tokens, refresh, exchange, admin, audit, forward_auth, introspection, scope_cache, store, log, telemetry, gateway, enterprise, clients)",
        ));
    }
    if let (Some(resources), Some(exchange)) = (&resources, &exchange) {
        for (index, resource) in resources.iter().enumerate() {
            if let Some(audience) = &resource.exchange_audience
                && exchange.audience(audience).is_none()
            {
                problems.push(Problem::new(
                    format!("resources[{index}].exchange_audience"),
                    format!("`{audience}` is not an [[exchange.audiences]] entry"),
                ));
            }
        }
    }
    let login = (sessions, consent, tokens, refresh, exchange);
    let operator = (admin, audit, forward_auth, scope_cache, introspection);
    match (
        server,
        upstream,
        verify,
        resources,
        api_keys,
        registration,
        login,
        operator,
        store,
        log,
    ) {
        (
            Some(server),
            Some(upstream),
            Some(verify),
            Some(resources),
            Some(api_keys),
            Some(registration),
            (Some(sessions), Some(consent), Some(tokens), Some(refresh), Some(exchange)),
            (Some(admin), Some(audit), Some(forward_auth), Some(scope_cache), Some(introspection)),
            Some(store),
            Some(log),
        ) if problems.is_empty() => Ok(Config {
            server,
            upstream,
            verify,
            resources,
            api_keys,
            registration,
            sessions,
            consent,
            tokens,
            refresh,
            exchange,
            admin,
            audit,
            forward_auth,
            introspection,
            scope_cache,
            store,
            log,
            // `None` only with a problem reported, which this arm excludes.
            gateways: gateways.unwrap_or_default(),
            enterprise: enterprise.unwrap_or_default(),
            clients: clients.unwrap_or_default(),
            telemetry: telemetry.unwrap_or_default(),
        }),
        _ => Err(ConfigError::Invalid(problems)),
    }
}

/// Removes section `name` from `root` and deserializes it (an absent section is
/// empty). A section that fails to deserialize is reported and yields `None`, so its
/// checks are skipped rather than reporting its keys as missing; the other sections
/// are still checked.
fn take_section<T: DeserializeOwned + Default>(
    root: &mut Table,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let Some(value) = root.remove(name) else {
        return Some(T::default());
    };
    match serde_path_to_error::deserialize(value) {
        Ok(section) => Some(section),
        Err(error) => {
            let path = error.path().to_string();
            let key = if path == "." {
                name.to_owned()
            } else {
                format!("{name}.{path}")
            };
            problems.push(Problem::new(key, error.inner().to_string()));
            None
        }
    }
}

/// Like [`take_section`] for an array of tables (`[[resources]]`).
fn take_list<T: DeserializeOwned>(
    root: &mut Table,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<T>> {
    let Some(value) = root.remove(name) else {
        return Some(Vec::new());
    };
    match serde_path_to_error::deserialize(value) {
        Ok(list) => Some(list),
        Err(error) => {
            problems.push(Problem::new(
                format!("{name}{}", display_index_path(&error.path().to_string())),
                error.inner().to_string(),
            ));
            None
        }
    }
}

/// serde's path `[0].uri` → `[0].uri`; `.` (the list itself) → empty.
fn display_index_path(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_owned()
    }
}
