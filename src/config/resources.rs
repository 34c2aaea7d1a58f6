//! `[[resources]]`: the protected resources (RFC 9728) — URI and routed path,
//! audiences, required and advertised scopes — with their tool rules, public tools,
//! per-client allow-lists and anonymous access.

use url::Url;

use super::Problem;
use super::raw::{RawResource, RawTool, RawToolClient};
use crate::domain::resource::{Authority, same_resource};
use crate::domain::scope::Scopes;
use crate::domain::tool_policy::{Anonymous, ToolPattern, ToolPolicy, ToolRule};

/// One `[[resources]]` entry: a protected resource such as an MCP server (RFC 9728).
#[derive(Debug, Clone)]
pub struct ResourceConfig {
    /// `uri`: the resource identifier clients send as `resource` (RFC 8707).
    pub uri: String,
    /// `name`: a human-readable name for its metadata.
    pub name: Option<String>,
    /// `audiences`: `aud` values accepted for it (default: the URI itself).
    pub audiences: Vec<String>,
    /// `required_scopes`: scopes every request must carry.
    pub required_scopes: crate::domain::scope::Scopes,
    /// `scopes_supported`: advertised in its metadata (default: the required scopes).
    pub scopes_supported: Vec<String>,
    /// The URI's path without a trailing slash (`""` for the root): requests under it
    /// belong to this resource.
    pub path: String,
    /// The URI's host and port: a request's `Host` (or a trusted proxy's
    /// `X-Forwarded-Host`) that names it picks this resource among those on one path.
    pub authority: crate::domain::resource::Authority,
    /// `exchange_audience`: forward-auth for this resource also exchanges the
    /// caller's token for one for this `[[exchange.audiences]]` entry and hands it to
    /// the proxy (`Authorization`, `X-Auth-Access-Token`).
    pub exchange_audience: Option<String>,
    /// `[[resources.tools]]` and `[[resources.clients]]`: per-tool scopes, public tools
    /// and per-client tool allow-lists.
    pub tools: crate::domain::tool_policy::ToolPolicy,
    /// `[resources.rate_limit]`: budgets per caller and per tool.
    pub rate_limit: super::rate_limit::RateLimitConfig,
    /// `[resources.addresses]`: `deny` / `allow` CIDR lists, judged on the client IP
    /// before the token is read; deny wins (default open).
    pub addresses: crate::domain::address_list::AddressList,
    /// `[resources.allow]`: who may use it (none: anyone the other checks admit),
    /// judged at login and on every request.
    pub allow: Option<crate::domain::identity_rule::AllowRule>,
}

/// The allow rule of the resource `uri` names (`[resources.allow]`), if it has one:
/// what a login for it, and a refresh of such a grant, is judged by.
pub fn allow_rule<'a>(
    resources: &'a [ResourceConfig],
    uri: &str,
) -> Option<&'a crate::domain::identity_rule::AllowRule> {
    resources
        .iter()
        .find(|r| same_resource(&r.uri, uri))
        .and_then(|r| r.allow.as_ref())
}

pub fn resources(
    raw: Vec<RawResource>,
    problems: &mut Vec<Problem>,
) -> Option<Vec<ResourceConfig>> {
    let before = problems.len();
    let mut out: Vec<ResourceConfig> = Vec::new();
    for (index, entry) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("resources[{index}].{field}");
        let Some(uri) = entry.uri else {
            problems.push(Problem::new(key("uri"), "missing (required)"));
            continue;
        };
        let parsed = Url::parse(&uri).ok().and_then(|url| {
            let plain = matches!(url.scheme(), "https" | "http")
                && url.fragment().is_none()
                && url.query().is_none();
            let authority = Authority::of(&url).filter(|_| plain)?;
            Some((url.path().trim_end_matches('/').to_owned(), authority))
        });
        let (path, authority) = match parsed {
            Some(parsed) => parsed,
            _ => {
                problems.push(Problem::new(
                    key("uri"),
                    format!("`{uri}` must be an http(s) URL without query or fragment"),
                ));
                continue;
            }
        };
        if out.iter().any(|r| same_resource(&r.uri, &uri)) {
            problems.push(Problem::new(key("uri"), format!("`{uri}` is listed twice")));
            continue;
        }
        // Requests are told apart by host and path only, never by scheme.
        if let Some(other) = out
            .iter()
            .find(|r| r.path == path && r.authority.overlaps(&authority))
        {
            problems.push(Problem::new(
                key("uri"),
                format!(
                    "`{uri}` and `{}` have the same host and path: a request's host and path cannot tell them apart",
                    other.uri
                ),
            ));
            continue;
        }
        let required = entry.required_scopes.unwrap_or_default();
        let required_scopes = match Scopes::parse(&required.join(" ")) {
            Ok(scopes) if scopes.contains(OFFLINE_ACCESS) => {
                problems.push(offline_access_problem(key("required_scopes")));
                continue;
            }
            Ok(scopes) => scopes,
            Err(e) => {
                problems.push(Problem::new(key("required_scopes"), e));
                continue;
            }
        };
        let audiences = entry.audiences.unwrap_or_else(|| vec![uri.clone()]);
        if audiences.is_empty() || audiences.iter().any(|a| a.trim().is_empty()) {
            problems.push(Problem::new(
                key("audiences"),
                "must list at least one non-empty audience",
            ));
            continue;
        }
        let Some(mut tools) = tool_policy(entry.tools, entry.clients, &key, problems) else {
            continue;
        };
        let Some(rate_limit) = super::rate_limit::rate_limit(entry.rate_limit, &key, problems)
        else {
            continue;
        };
        let Some(allow) = super::identity::allow(entry.allow, &key, problems) else {
            continue;
        };
        let at = key("addresses");
        let Some(addresses) = super::addresses::addresses(entry.addresses, &at, problems) else {
            continue;
        };
        match entry
            .anonymous
            .as_deref()
            .map_or(Ok(Anonymous::None), Anonymous::parse)
        {
            // Opting in with nothing public would only bring back the anonymous
            // handshake, and with it the second login.
            Ok(Anonymous::PublicTools) if !tools.has_public() => {
                problems.push(Problem::new(
                    key("anonymous"),
                    "`public-tools` needs at least one [[resources.tools]] entry with public = true",
                ));
                continue;
            }
            Ok(anonymous) => tools.anonymous = anonymous,
            Err(e) => {
                problems.push(Problem::new(key("anonymous"), e));
                continue;
            }
        }
        // Advertised: what the operator lists (default the required scopes), and every
        // scope a tool rule needs, so clients can ask for them up front.
        if let Some(listed) = &entry.scopes_supported
            && listed.iter().any(|s| s == OFFLINE_ACCESS)
        {
            problems.push(offline_access_problem(key("scopes_supported")));
            continue;
        }
        // Each entry is one scope, as the metadata document lists it and a challenge's
        // `scope` joins it: `"a b"` would be advertised as one scope and read back as two.
        if let Some(not_one) = entry.scopes_supported.iter().flatten().find(|s| {
            Scopes::parse(s).map(|scopes| scopes.len()) != Ok(1) || s.trim() != s.as_str()
        }) {
            problems.push(Problem::new(
                key("scopes_supported"),
                format!(
                    "`{not_one}` is not one scope (RFC 6749 §3.3: printable ASCII, no spaces, `\"` or `\\`)"
                ),
            ));
            continue;
        }
        let mut scopes_supported = entry
            .scopes_supported
            .unwrap_or_else(|| required_scopes.iter().map(String::from).collect());
        for scope in tools.scopes().iter() {
            if !scopes_supported.iter().any(|s| s == scope) {
                scopes_supported.push(scope.to_owned());
            }
        }
        out.push(ResourceConfig {
            uri,
            name: entry.name,
            audiences,
            required_scopes,
            scopes_supported,
            path,
            authority,
            exchange_audience: entry.exchange_audience,
            tools,
            rate_limit,
            addresses,
            allow,
        });
    }
    (problems.len() == before).then_some(out)
}

/// Tool names or patterns, each checked (a resource's tool rules, an API key's
/// allow-list).
pub(super) fn patterns(list: &[String]) -> Result<Vec<ToolPattern>, String> {
    list.iter().map(|t| ToolPattern::parse(t)).collect()
}

/// Asks the authorization server for refresh tokens: no resource's requirement, so MCP
/// 2026-07-28 ("Refresh Tokens") keeps it out of a resource's challenges and
/// `scopes_supported`. Refused rather than dropped: a resource requiring it could not
/// name what it requires, and a listed scope the broker silently left out would
/// surprise. The broker's own metadata (RFC 8414) lists it, which is where clients look.
const OFFLINE_ACCESS: &str = "offline_access";

fn offline_access_problem(key: String) -> Problem {
    Problem::new(
        key,
        "`offline_access` is not a resource's scope (it asks for refresh tokens, which the broker's authorization server metadata offers): remove it",
    )
}

/// `[[resources.tools]]` and `[[resources.clients]]` of one resource.
fn tool_policy(
    tools: Option<Vec<RawTool>>,
    clients: Option<Vec<RawToolClient>>,
    key: &dyn Fn(&str) -> String,
    problems: &mut Vec<Problem>,
) -> Option<ToolPolicy> {
    let before = problems.len();
    let mut policy = ToolPolicy::default();
    for (i, tool) in tools.unwrap_or_default().into_iter().enumerate() {
        let at = |field: &str| key(&format!("tools[{i}].{field}"));
        let pattern = match tool.name.as_deref().map(ToolPattern::parse) {
            Some(Ok(pattern)) => pattern,
            Some(Err(e)) => {
                problems.push(Problem::new(at("name"), e));
                continue;
            }
            None => {
                problems.push(Problem::new(at("name"), "missing (required)"));
                continue;
            }
        };
        if policy.rules.iter().any(|r| r.pattern == pattern) {
            problems.push(Problem::new(
                at("name"),
                format!("`{}` has a rule already", pattern.as_str()),
            ));
            continue;
        }
        let scopes = match Scopes::parse(&tool.scopes.unwrap_or_default().join(" ")) {
            Ok(scopes) => scopes,
            Err(e) => {
                problems.push(Problem::new(at("scopes"), e));
                continue;
            }
        };
        if scopes.contains(OFFLINE_ACCESS) {
            problems.push(offline_access_problem(at("scopes")));
            continue;
        }
        let public = tool.public.unwrap_or(false);
        if public && !scopes.is_empty() {
            problems.push(Problem::new(
                at("public"),
                "a public tool needs no scope of its own, so it cannot name scopes",
            ));
            continue;
        }
        policy.rules.push(ToolRule {
            pattern,
            scopes,
            public,
        });
    }
    for (i, client) in clients.unwrap_or_default().into_iter().enumerate() {
        let at = |field: &str| key(&format!("clients[{i}].{field}"));
        let Some(client_id) = client.client_id.filter(|c| !c.trim().is_empty()) else {
            problems.push(Problem::new(at("client_id"), "missing (required)"));
            continue;
        };
        match patterns(&client.tools.unwrap_or_default()) {
            Ok(list) if !list.is_empty() => policy.clients.push((client_id, list)),
            Ok(_) => problems.push(Problem::new(
                at("tools"),
                "must list at least one tool (a client with none should not be registered)",
            )),
            Err(e) => problems.push(Problem::new(at("tools"), e)),
        }
    }
    (problems.len() == before).then_some(policy)
}
