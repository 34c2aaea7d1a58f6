//! `token-broker check-upstream`: proves the configured provider works for the broker
//! before anyone depends on it — discovery (issuer match), JWKS (usable keys), and the
//! broker's own client credentials (a token obtained and its signature verified).

use std::time::Duration;

use serde_json::Value;

use super::UpstreamError;
use super::discovery::{self, ProviderInfo};
use super::http::UpstreamHttp;
use super::jwks::{self, KeySet};
use super::jws::{HeaderError, read_header, verified_claims};
use super::token::{self, ClientCredentials};
use crate::config::Config;

/// One line per step; `ok` is false when any step failed.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub ok: bool,
}

impl Report {
    fn pass(&mut self, line: String) {
        self.lines.push(format!("ok    {line}"));
    }
    fn note(&mut self, line: String) {
        self.lines.push(format!("note  {line}"));
    }
    fn fail(&mut self, line: String) {
        self.lines.push(format!("FAIL  {line}"));
        self.ok = false;
    }
}

pub async fn check(config: &Config) -> Report {
    let mut report = Report {
        ok: true,
        ..Report::default()
    };
    let http = match UpstreamHttp::new(Duration::from_secs(10)) {
        Ok(http) => http,
        Err(e) => {
            report.fail(e);
            return report;
        }
    };
    let issuer = &config.upstream.issuer;
    let info = match discovery::discover(&http, issuer).await {
        Ok(info) => info,
        Err(e) => {
            report.fail(format!("discovery: {e}"));
            return report;
        }
    };
    report.pass(format!(
        "discovery: {:?} document, issuer `{}`",
        info.kind, info.issuer
    ));
    let keys = match jwks::fetch(&http, &info.jwks_uri).await {
        Ok(keys) if !keys.is_empty() => keys,
        Ok(_) => {
            report.fail(format!("jwks: {} has no usable signing key", info.jwks_uri));
            return report;
        }
        Err(e) => {
            report.fail(format!("jwks: {e}"));
            return report;
        }
    };
    report.pass(format!(
        "jwks: {} signing key(s) [{}], {} skipped",
        keys.len(),
        keys.kids().join(", "),
        keys.skipped.len()
    ));
    for skipped in &keys.skipped {
        report.note(format!(
            "jwks: key {skipped}: tokens it signs will be refused"
        ));
    }
    check_credentials(&http, config, &info, &keys, &mut report).await;
    report
}

async fn check_credentials(
    http: &UpstreamHttp,
    config: &Config,
    info: &ProviderInfo,
    keys: &KeySet,
    report: &mut Report,
) {
    let Some(token_endpoint) = &info.token_endpoint else {
        report.fail("token endpoint: the provider advertises none".to_owned());
        return;
    };
    let client = ClientCredentials::of(&config.upstream);
    match token::client_credentials(http, token_endpoint, &client, None).await {
        Ok(token) => {
            report.pass(format!("client credentials accepted: {token}"));
            match verify_signature(&token.access_token, keys, &info.issuer) {
                Ok(Some(kid)) => report.pass(format!("token signature verified with key `{kid}`")),
                Ok(None) => {
                    report.note("the access token is opaque; it will be introspected".to_owned())
                }
                Err(e) => report.fail(format!("token signature: {e}")),
            }
        }
        Err(UpstreamError::OAuth { error, .. })
            if error == "unauthorized_client" || error == "unsupported_grant_type" =>
        {
            report.note(format!(
                "client credentials grant not enabled for `{}` ({error}); the secret was not checked",
                client.client_id
            ));
        }
        Err(e) => report.fail(format!(
            "client credentials for `{}`: {e}",
            client.client_id
        )),
    }
}

/// `Ok(None)` for a token that is not a JWT. Its signature, then its issuer: the
/// broker judges time against its own clock when it verifies, not here.
fn verify_signature(token: &str, keys: &KeySet, issuer: &str) -> Result<Option<String>, String> {
    let header = match read_header(token) {
        Ok(header) => header,
        Err(HeaderError::Malformed(_)) => return Ok(None),
        Err(HeaderError::Algorithm(why)) => return Err(why),
    };
    let alg = header.alg;
    let key = keys
        .find(header.kid.as_deref())
        .ok_or_else(|| format!("no published key has kid {:?}", header.kid))?;
    if !key.algorithms.contains(&alg) {
        return Err(format!("alg {alg} is not allowed for that key"));
    }
    let claims: Value =
        verified_claims(token, alg, &key.key).map_err(|e| format!("{e} ({alg})"))?;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(format!("its iss is not `{issuer}`"));
    }
    Ok(Some(header.kid.unwrap_or_default()))
}
