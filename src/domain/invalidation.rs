//! What an invalidation covers: one grant, everything of a subject or of a client, or
//! everything. Sent by revocation and refresh-token reuse detection, by the admin API,
//! and (with a shared store) by other replicas; every cache that remembers something
//! on behalf of a subject asks [`Invalidation::covers`] of its entries.

use serde::{Deserialize, Serialize};

/// One invalidation. Serialised as `{"grant_id": …}`, `{"subject": …}`,
/// `{"client_id": …}` or `{"all": true}` — the admin API's body and the shape other
/// replicas receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalidation {
    GrantId(String),
    Subject(String),
    ClientId(String),
    All(bool),
}

/// Whose a cached entry is.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub subject: &'a str,
    pub client_id: Option<&'a str>,
    pub grant_id: Option<&'a str>,
}

impl Invalidation {
    /// Reads the admin API's body: exactly one of `grant_id`, `subject`, `client_id`
    /// (non-empty strings) or `"all": true`.
    pub fn from_json(body: &serde_json::Value) -> Result<Self, String> {
        let object = body.as_object().ok_or("the body must be a JSON object")?;
        let [(key, value)] = object.iter().collect::<Vec<_>>()[..] else {
            return Err(
                "name exactly one of grant_id, subject, client_id, or \"all\": true".to_owned(),
            );
        };
        let text = || match value.as_str() {
            Some(text) if !text.is_empty() => Ok(text.to_owned()),
            _ => Err(format!("`{key}` must be a non-empty string")),
        };
        match key.as_str() {
            "grant_id" => Ok(Self::GrantId(text()?)),
            "subject" => Ok(Self::Subject(text()?)),
            "client_id" => Ok(Self::ClientId(text()?)),
            "all" if value.as_bool() == Some(true) => Ok(Self::All(true)),
            "all" => Err("`all` must be true".to_owned()),
            other => Err(format!(
                "unknown key `{other}` (expected grant_id, subject, client_id or all)"
            )),
        }
    }

    /// The metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::GrantId(_) => "grant",
            Self::Subject(_) => "subject",
            Self::ClientId(_) => "client",
            Self::All(_) => "all",
        }
    }

    /// Whether an entry of `owner` must go.
    pub fn covers(&self, owner: Owner<'_>) -> bool {
        match self {
            Self::GrantId(id) => owner.grant_id == Some(id.as_str()),
            Self::Subject(subject) => owner.subject == subject,
            Self::ClientId(id) => owner.client_id == Some(id.as_str()),
            Self::All(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ALICE: Owner<'static> = Owner {
        subject: "alice",
        client_id: Some("c1"),
        grant_id: Some("g1"),
    };

    #[test]
    fn each_kind_covers_its_own() {
        assert!(Invalidation::GrantId("g1".into()).covers(ALICE));
        assert!(!Invalidation::GrantId("g2".into()).covers(ALICE));
        assert!(Invalidation::Subject("alice".into()).covers(ALICE));
        assert!(!Invalidation::Subject("bob".into()).covers(ALICE));
        assert!(Invalidation::ClientId("c1".into()).covers(ALICE));
        assert!(!Invalidation::ClientId("c2".into()).covers(ALICE));
        assert!(Invalidation::All(true).covers(ALICE));
        let anonymous = Owner {
            subject: "alice",
            client_id: None,
            grant_id: None,
        };
        assert!(!Invalidation::GrantId("g1".into()).covers(anonymous));
        assert!(!Invalidation::ClientId("c1".into()).covers(anonymous));
    }

    #[test]
    fn the_admin_body_names_exactly_one_thing() {
        assert_eq!(
            Invalidation::from_json(&json!({"subject": "alice"})),
            Ok(Invalidation::Subject("alice".into()))
        );
        assert_eq!(
            Invalidation::from_json(&json!({"all": true})),
            Ok(Invalidation::All(true))
        );
        for bad in [
            json!({}),
            json!([]),
            json!({"subject": "alice", "client_id": "c1"}),
            json!({"subject": ""}),
            json!({"subject": 7}),
            json!({"all": false}),
            json!({"everyone": true}),
        ] {
            assert!(Invalidation::from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn it_travels_as_the_admin_body() {
        let event = Invalidation::ClientId("c1".into());
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(text, r#"{"client_id":"c1"}"#);
        assert_eq!(
            Invalidation::from_json(&serde_json::from_str(&text).unwrap()),
            Ok(event)
        );
    }
}
