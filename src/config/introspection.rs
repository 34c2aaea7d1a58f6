//! `[introspection]`: who may ask `POST /oauth/introspect` about any token. RFC 7662
//! §4: an introspection endpoint answering every client lets anyone who registers
//! learn about everyone's tokens, so only the resource servers named here may; any
//! other confidential client learns only about its own tokens.

use serde::Deserialize;

use super::Problem;
use super::sections::Checker;

/// `[introspection]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawIntrospection {
    pub clients: Option<Vec<String>>,
}

/// `[introspection]`
#[derive(Debug, Clone, Default)]
pub struct IntrospectionConfig {
    /// `clients`: client ids of the resource servers that may introspect any token —
    /// `[[exchange.clients]]` entries or registered confidential clients (default:
    /// none).
    pub clients: Vec<String>,
}

impl IntrospectionConfig {
    /// Whether `client_id` is a resource server that may introspect any token.
    pub fn any_token(&self, client_id: &str) -> bool {
        self.clients.iter().any(|c| c == client_id)
    }
}

pub fn introspection(
    raw: RawIntrospection,
    problems: &mut Vec<Problem>,
) -> Option<IntrospectionConfig> {
    let mut c = Checker::new("introspection", problems);
    let mut clients: Vec<String> = Vec::new();
    for id in raw.clients.unwrap_or_default() {
        if id.trim().is_empty() {
            c.report("clients", "a client id must not be empty");
        } else if clients.contains(&id) {
            c.report("clients", format!("`{id}` is listed twice"));
        } else {
            clients.push(id);
        }
    }
    c.ok().then_some(IntrospectionConfig { clients })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_repeated_client_ids_are_refused() {
        let mut problems = Vec::new();
        let raw = RawIntrospection {
            clients: Some(vec!["rs".into(), "".into(), "rs".into()]),
        };
        assert!(introspection(raw, &mut problems).is_none());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].to_string().contains("introspection.clients"));
        let ok = introspection(
            RawIntrospection {
                clients: Some(vec!["rs".into()]),
            },
            &mut Vec::new(),
        )
        .unwrap();
        assert!(ok.any_token("rs") && !ok.any_token("other"));
    }
}
