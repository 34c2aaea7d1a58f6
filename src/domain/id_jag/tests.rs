use serde_json::json;

use super::*;

const RESOURCES: &[KnownResource<'static>] = &[KnownResource {
    uri: "https://mcp.example/mcp",
    scopes_supported: &[],
}];

fn claims() -> Claims {
    Claims {
        iss: Some("https://idp.example".into()),
        sub: Some("alice".into()),
        aud: Some(json!("https://broker.example")),
        client_id: Some("wiki".into()),
        jti: Some("j1".into()),
        exp: Some(1_300),
        iat: Some(1_000),
        nbf: None,
        resource: Some(json!("https://mcp.example/mcp")),
        scope: Some("notes:read notes:write admin".into()),
        email: Some("alice@example.com".into()),
    }
}

fn judged(claims: &Claims, requested: Option<&Scopes>) -> Result<Accepted, Refusal> {
    let max = Scopes::of(["notes:read", "notes:write"]);
    judge(
        claims,
        &Expected {
            audience: "https://broker.example",
            client_id: "wiki",
            resources: RESOURCES,
            subject: SubjectFrom::Sub { prefix: "" },
            max_scopes: &max,
            requested,
            now: 1_100,
            leeway: 30,
            max_lifetime: 600,
        },
    )
}

#[test]
fn scopes_are_the_intersection_of_asked_carried_and_allowed() {
    let accepted = judged(&claims(), None).unwrap();
    assert_eq!(accepted.scopes, Scopes::of(["notes:read", "notes:write"]));
    assert_eq!(accepted.subject, "alice");
    let asked = Scopes::of(["notes:read", "other"]);
    assert_eq!(
        judged(&claims(), Some(&asked)).unwrap().scopes,
        Scopes::of(["notes:read"])
    );
    let none = Scopes::of(["other"]);
    assert_eq!(judged(&claims(), Some(&none)), Err(Refusal::NoScope));
}

/// A change to good claims, and the refusal it must cause.
type Case = (fn(&mut Claims), Refusal);

#[test]
fn each_claim_rule_refuses_on_its_own() {
    let cases: Vec<Case> = vec![
        (|c| c.jti = None, Refusal::MissingClaims),
        (
            |c| c.aud = Some(json!("https://broker.example/")),
            Refusal::WrongAudience,
        ),
        (
            |c| c.aud = Some(json!(["https://broker.example", "https://other"])),
            Refusal::WrongAudience,
        ),
        (|c| c.exp = Some(1_070), Refusal::Expired),
        (|c| c.iat = Some(1_200), Refusal::NotYetValid),
        (|c| c.exp = Some(1_700), Refusal::TooLong),
        (|c| c.client_id = Some("other".into()), Refusal::WrongClient),
        (|c| c.resource = None, Refusal::UnknownResource),
        (
            |c| c.resource = Some(json!("https://elsewhere/mcp")),
            Refusal::UnknownResource,
        ),
        (|c| c.scope = None, Refusal::NoScope),
    ];
    for (change, refusal) in cases {
        let mut c = claims();
        change(&mut c);
        assert_eq!(judged(&c, None), Err(refusal));
    }
    let mut one = claims();
    one.aud = Some(json!(["https://broker.example"]));
    assert!(judged(&one, None).is_ok());
}

#[test]
fn the_typ_must_name_an_id_jag() {
    assert!(is_id_jag_type(Some("oauth-id-jag+jwt")));
    assert!(is_id_jag_type(Some("application/OAUTH-ID-JAG+JWT")));
    assert!(!is_id_jag_type(Some("JWT")));
    assert!(!is_id_jag_type(None));
}
