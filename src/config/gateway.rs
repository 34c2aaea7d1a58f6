//! `[[gateway]]`: MCP servers the broker fronts itself (gateway mode). Each entry is a
//! path the broker serves and the Streamable HTTP endpoint it forwards to, bound to the
//! one `[[resources]]` entry whose token and tool rules apply: the one it names
//! (`resource`), else the one covering its path. Entries may share a path when they
//! serve resources on different hosts; a request reaches the entry of the resource its
//! host and path select.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{Problem, ResourceConfig};

/// Paths the broker answers itself; a gateway may not take them over.
const RESERVED: [&str; 8] = [
    "/oauth",
    "/auth",
    "/.well-known",
    "/healthz",
    "/readyz",
    "/metrics",
    "/jwks.json",
    "/admin",
];

/// One `[[gateway]]` entry as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    pub path: Option<String>,
    pub resource: Option<String>,
    pub upstream: Option<String>,
    pub timeout: Option<String>,
}

/// One `[[gateway]]` entry.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `path`: where the broker serves the MCP endpoint (e.g. `/mcp`); under a
    /// `[[resources]]` entry's path.
    pub path: String,
    /// The URI of the `[[resources]]` entry this MCP server is (`resource`, or the one
    /// covering `path`): requests the access flow judges by another resource's rules
    /// never reach it.
    pub resource: String,
    /// `upstream`: the MCP server's Streamable HTTP endpoint (http or https).
    pub upstream: Url,
    /// `timeout`: how long the MCP server may take to start answering — connecting
    /// and its response headers, so a plain-JSON tool result counts in full (default
    /// 60 s). Event streams, once started, run as long as they last.
    pub timeout: Duration,
}

/// Checks the entries against the resources (`None` when those did not load, so
/// their problems are not reported twice).
pub fn gateways(
    raw: Vec<RawGateway>,
    resources: Option<&[ResourceConfig]>,
    problems: &mut Vec<Problem>,
) -> Option<Vec<GatewayConfig>> {
    let before = problems.len();
    let mut out: Vec<GatewayConfig> = Vec::new();
    for (i, entry) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("gateway[{i}].{field}");
        let path = match entry.path.as_deref().map(check_path) {
            Some(Ok(path)) => Some(path),
            Some(Err(e)) => {
                problems.push(Problem::new(key("path"), e));
                None
            }
            None => {
                problems.push(Problem::new(key("path"), "missing (required)"));
                None
            }
        };
        let upstream = match entry.upstream.as_deref().map(check_upstream) {
            Some(Ok(url)) => Some(url),
            Some(Err(e)) => {
                problems.push(Problem::new(key("upstream"), e));
                None
            }
            None => {
                problems.push(Problem::new(key("upstream"), "missing (required)"));
                None
            }
        };
        let timeout = match entry.timeout.as_deref().map(humantime::parse_duration) {
            None => Some(Duration::from_secs(60)),
            Some(Ok(t)) if !t.is_zero() => Some(t),
            Some(_) => {
                problems.push(Problem::new(
                    key("timeout"),
                    "must be a positive duration such as 30s or 5m",
                ));
                None
            }
        };
        let (Some(path), Some(upstream), Some(timeout)) = (path, upstream, timeout) else {
            continue;
        };
        // Without the resources (they did not load) nothing more can be checked.
        let Some(resources) = resources else {
            continue;
        };
        let resource = match bind(resources, &path, entry.resource.as_deref()) {
            Ok(resource) => resource,
            Err(problem) => {
                let field = if entry.resource.is_some() {
                    "resource"
                } else {
                    "path"
                };
                problems.push(Problem::new(key(field), problem));
                continue;
            }
        };
        if out.iter().any(|g| {
            g.path == path
                && resources
                    .iter()
                    .find(|r| r.uri == g.resource)
                    .is_some_and(|other| other.authority.overlaps(&resource.authority))
        }) {
            problems.push(Problem::new(
                key("path"),
                format!("`{path}` is listed twice for the same host"),
            ));
            continue;
        }
        out.push(GatewayConfig {
            path,
            resource: resource.uri.clone(),
            upstream,
            timeout,
        });
    }
    (problems.len() == before).then_some(out)
}

/// The resource an entry at `path` serves: the one `named` (which must cover the path
/// and be the resource a request on its host to that path selects: else the access
/// flow would judge every such request by another resource), or, unnamed, the one
/// covering the path with the longest path — refused when resources on several hosts
/// share that path, since the entry cannot tell which server it is.
fn bind<'r>(
    resources: &'r [ResourceConfig],
    path: &str,
    named: Option<&str>,
) -> Result<&'r ResourceConfig, String> {
    use crate::domain::resource::{path_covers, same_resource};
    let covering = || resources.iter().filter(|r| path_covers(&r.path, path));
    let Some(named) = named else {
        let Some(longest) = covering().max_by_key(|r| r.path.len()) else {
            return Err(format!(
                "`{path}` is not under any [[resources]] entry's path"
            ));
        };
        if covering().any(|r| r.path == longest.path && r.authority != longest.authority) {
            return Err(format!(
                "resources on several hosts cover `{path}`: name the one this MCP server is with `resource`"
            ));
        }
        return Ok(longest);
    };
    let Some(resource) = resources.iter().find(|r| same_resource(&r.uri, named)) else {
        return Err(format!("`{named}` is not a [[resources]] entry's uri"));
    };
    if !path_covers(&resource.path, path) {
        return Err(format!(
            "`{path}` is not under the path of `{named}` ({})",
            if resource.path.is_empty() {
                "/"
            } else {
                &resource.path
            }
        ));
    }
    if let Some(closer) = covering()
        .find(|r| r.path.len() > resource.path.len() && r.authority.overlaps(&resource.authority))
    {
        return Err(format!(
            "requests to `{path}` on this host belong to `{}`, whose path is longer",
            closer.uri
        ));
    }
    Ok(resource)
}

/// An absolute path of plain segments, used as an actix route pattern as it is (so no
/// `{`, `}`, query or fragment), not one of the broker's own.
fn check_path(path: &str) -> Result<String, String> {
    let segments_ok = path.strip_prefix('/').is_some_and(|rest| {
        rest.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        })
    });
    if !segments_ok {
        return Err(format!(
            "`{path}` must be an absolute path such as /mcp: segments of letters, digits, `-`, `.`, `_`, `~`, no trailing slash"
        ));
    }
    if RESERVED
        .iter()
        .any(|r| crate::domain::resource::path_covers(r, path))
    {
        return Err(format!("`{path}` is one of the broker's own paths"));
    }
    Ok(path.to_owned())
}

fn check_upstream(text: &str) -> Result<Url, String> {
    let problem = || {
        format!(
            "`{text}` must be an http(s) URL with a host, without credentials, query or fragment"
        )
    };
    let url = Url::parse(text).map_err(|_| problem())?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if plain { Ok(url) } else { Err(problem()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> ResourceConfig {
        ResourceConfig {
            uri: format!("https://mcp.example{path}"),
            name: None,
            audiences: vec![],
            required_scopes: Default::default(),
            scopes_supported: vec![],
            path: path.to_owned(),
            authority: Default::default(),
            exchange_audience: None,
            tools: Default::default(),
            rate_limit: Default::default(),
            addresses: Default::default(),
            allow: None,
        }
    }

    fn raw(path: &str, upstream: &str) -> RawGateway {
        RawGateway {
            path: Some(path.to_owned()),
            upstream: Some(upstream.to_owned()),
            ..Default::default()
        }
    }

    fn hosted(uri: &str) -> ResourceConfig {
        let url = Url::parse(uri).unwrap();
        ResourceConfig {
            uri: uri.to_owned(),
            path: url.path().trim_end_matches('/').to_owned(),
            authority: crate::domain::resource::Authority::of(&url).unwrap(),
            ..resource("")
        }
    }

    fn named(path: &str, resource: &str) -> RawGateway {
        RawGateway {
            resource: Some(resource.to_owned()),
            ..raw(path, "http://127.0.0.1:3000/mcp")
        }
    }

    #[test]
    fn entries_on_two_hosts_share_a_path_when_each_names_its_resource() {
        let resources = [
            hosted("https://a.example/mcp"),
            hosted("https://b.example/mcp"),
        ];
        let mut problems = Vec::new();
        let entries = vec![
            named("/mcp", "https://b.example/mcp"),
            named("/mcp", "https://a.example/mcp/"),
        ];
        let out = gateways(entries, Some(&resources), &mut problems).unwrap();
        let bound: Vec<&str> = out.iter().map(|g| g.resource.as_str()).collect();
        assert_eq!(bound, ["https://b.example/mcp", "https://a.example/mcp"]);
    }

    #[test]
    fn an_entry_that_cannot_tell_its_server_or_names_the_wrong_one_is_refused() {
        let resources = [
            hosted("https://a.example/mcp"),
            hosted("https://b.example/mcp"),
            hosted("https://b.example/mcp/notes"),
        ];
        let cases = [
            (raw("/mcp", "http://x/"), "gateway[0].path", "name the one"),
            (
                named("/mcp", "https://c.example/mcp"),
                "gateway[0].resource",
                "is not a",
            ),
            (
                named("/tools", "https://a.example/mcp"),
                "gateway[0].resource",
                "not under",
            ),
            (
                named("/mcp/notes", "https://b.example/mcp"),
                "gateway[0].resource",
                "longer",
            ),
        ];
        for (entry, key, wording) in cases {
            let mut problems = Vec::new();
            assert!(gateways(vec![entry], Some(&resources), &mut problems).is_none());
            assert_eq!(problems[0].key, key);
            assert!(
                problems[0].message.contains(wording),
                "{}",
                problems[0].message
            );
        }
        let mut problems = Vec::new();
        let twice = vec![
            named("/mcp", "https://b.example/mcp"),
            named("/mcp", "https://b.example/mcp"),
        ];
        assert!(gateways(twice, Some(&resources), &mut problems).is_none());
        assert!(problems[0].message.contains("twice for the same host"));
        // Another host's longer path does not take this host's requests.
        let mut problems = Vec::new();
        let a_notes = vec![named("/mcp/notes", "https://a.example/mcp")];
        assert!(gateways(a_notes, Some(&resources), &mut problems).is_some());
    }

    #[test]
    fn entries_under_a_resource_load() {
        let resources = [resource("/mcp")];
        let mut problems = Vec::new();
        let out = gateways(
            vec![
                raw("/mcp", "http://127.0.0.1:3000/mcp"),
                raw("/mcp/notes", "https://notes.internal/mcp"),
            ],
            Some(&resources),
            &mut problems,
        )
        .unwrap();
        assert!(problems.is_empty());
        assert_eq!(out[1].upstream.as_str(), "https://notes.internal/mcp");
        assert_eq!(out[0].timeout, Duration::from_secs(60));
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let resources = [resource("/mcp")];
        let mut problems = Vec::new();
        let entries = vec![
            raw("/mcpx", "http://127.0.0.1:3000/mcp"),
            raw("/mcp/", "ftp://x/"),
            raw("/mcp", "http://u:p@x/"),
            raw("/mcp/{id}", "http://x/?q=1"),
            raw("/mcp/a", "http://x/"),
            raw("/mcp/a", "http://y/"),
            RawGateway {
                timeout: Some("soon".to_owned()),
                ..Default::default()
            },
        ];
        assert!(gateways(entries, Some(&resources), &mut problems).is_none());
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "gateway[0].path",
                "gateway[1].path",
                "gateway[1].upstream",
                "gateway[2].upstream",
                "gateway[3].path",
                "gateway[3].upstream",
                "gateway[5].path",
                "gateway[6].path",
                "gateway[6].upstream",
                "gateway[6].timeout",
            ]
        );
    }

    #[test]
    fn the_brokers_own_paths_are_refused_even_under_a_root_resource() {
        let resources = [resource("")];
        for path in ["/oauth/token", "/auth", "/.well-known/x", "/metrics"] {
            let mut problems = Vec::new();
            let out = gateways(
                vec![raw(path, "http://x/")],
                Some(&resources),
                &mut problems,
            );
            assert!(out.is_none(), "{path}");
        }
        let mut problems = Vec::new();
        assert!(
            gateways(
                vec![raw("/tools", "http://x/")],
                Some(&resources),
                &mut problems
            )
            .is_some()
        );
    }
}
