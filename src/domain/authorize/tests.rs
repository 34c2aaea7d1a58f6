use super::*;

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn uris() -> Vec<String> {
    vec![
        "http://127.0.0.1/callback".into(),
        "https://app.example/cb".into(),
    ]
}

fn scopes() -> Vec<String> {
    vec!["notes:read".into(), "notes:write".into()]
}

fn params<'a>() -> AuthorizeParams<'a> {
    AuthorizeParams {
        client_id: Some("c1"),
        redirect_uri: Some("http://127.0.0.1:53000/callback"),
        response_type: Some("code"),
        code_challenge: Some(CHALLENGE),
        code_challenge_method: Some("S256"),
        state: Some("xyz"),
        scope: Some("notes:read offline_access"),
        resources: vec!["https://mcp.example/mcp/"],
    }
}

fn run(p: &AuthorizeParams<'_>) -> Result<Authorization, AuthorizeError> {
    let uris = uris();
    let supported = scopes();
    let client = ClientView {
        client_id: "c1",
        redirect_uris: &uris,
    };
    let resources = [ResourceView {
        uri: "https://mcp.example/mcp",
        scopes_supported: &supported,
    }];
    validate(p, Some(&client), &resources)
}

fn redirected_error(result: Result<Authorization, AuthorizeError>) -> &'static str {
    match result {
        Err(AuthorizeError::Redirect { error, state, .. }) => {
            assert_eq!(state.as_deref(), Some("xyz"));
            error
        }
        other => panic!("expected a redirected error, got {other:?}"),
    }
}

#[test]
fn a_good_request_passes_with_the_configured_resource() {
    let ok = run(&params()).unwrap();
    assert_eq!(ok.redirect_uri, "http://127.0.0.1:53000/callback");
    assert_eq!(ok.resource.as_deref(), Some("https://mcp.example/mcp"));
    assert_eq!(ok.scopes.to_string(), "notes:read offline_access");
}

#[test]
fn unknown_clients_and_unregistered_redirects_are_shown_not_redirected() {
    let uris = uris();
    assert!(matches!(
        validate(&params(), None, &[]),
        Err(AuthorizeError::Show(_))
    ));
    let mut p = params();
    p.redirect_uri = Some("https://evil.example/cb");
    assert!(matches!(run(&p), Err(AuthorizeError::Show(_))));
    p.redirect_uri = None;
    let client = ClientView {
        client_id: "c1",
        redirect_uris: &uris,
    };
    assert!(matches!(
        validate(&p, Some(&client), &[]),
        Err(AuthorizeError::Show(_))
    ));
}

#[test]
fn protocol_errors_go_back_to_the_client() {
    let mut p = params();
    p.code_challenge_method = Some("plain");
    assert_eq!(redirected_error(run(&p)), "invalid_request");
    let mut p = params();
    p.code_challenge = None;
    assert_eq!(redirected_error(run(&p)), "invalid_request");
    let mut p = params();
    p.response_type = Some("token");
    assert_eq!(redirected_error(run(&p)), "unsupported_response_type");
    let mut p = params();
    p.resources = vec!["https://other.example/api"];
    assert_eq!(redirected_error(run(&p)), "invalid_target");
    let mut p = params();
    p.scope = Some("admin");
    assert_eq!(redirected_error(run(&p)), "invalid_scope");
}

#[test]
fn the_resource_bounds_the_scope_not_the_registration() {
    // An MCP client registers with its first challenge's scope and steps up later.
    let uris = uris();
    let supported = scopes();
    let client = ClientView {
        client_id: "c1",
        redirect_uris: &uris,
    };
    let resources = [ResourceView {
        uri: "https://mcp.example/mcp",
        scopes_supported: &supported,
    }];
    let mut p = params();
    p.scope = Some("notes:read notes:write openid");
    assert!(validate(&p, Some(&client), &resources).is_ok());
    p.scope = Some("notes:admin");
    assert!(matches!(
        validate(&p, Some(&client), &resources),
        Err(AuthorizeError::Redirect { .. })
    ));
}
