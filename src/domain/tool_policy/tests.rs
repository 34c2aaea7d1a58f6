use super::*;

fn p(text: &str) -> ToolPattern {
    ToolPattern::parse(text).unwrap()
}

fn s(text: &str) -> Scopes {
    Scopes::parse(text).unwrap()
}

fn rule(pattern: &str, scopes: &str, public: bool) -> ToolRule {
    ToolRule {
        pattern: p(pattern),
        scopes: s(scopes),
        public,
    }
}

fn policy() -> ToolPolicy {
    ToolPolicy {
        rules: vec![
            rule("*", "", false),
            rule("notes_*", "notes:read", false),
            rule("notes_write", "notes:write", false),
            rule("health", "", true),
        ],
        clients: vec![("limited".to_owned(), vec![p("notes_read")])],
        anonymous: Anonymous::PublicTools,
    }
}

fn caller<'a>(scopes: &'a Scopes, client: Option<&'a str>) -> Caller<'a> {
    Caller {
        scopes,
        client_id: client,
        tools: None,
    }
}

#[test]
fn patterns_are_checked_and_matched() {
    assert!(p("get_*").matches("get_notes"));
    assert!(!p("get_*").matches("list_notes"));
    assert!(p("*").matches("anything"));
    assert!(p("notes_write").matches("notes_write"));
    assert!(!p("notes_write").matches("notes_write2"));
    for bad in ["", "a*b", "**", "has space", "semi;colon", &"x".repeat(129)] {
        assert!(ToolPattern::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_most_specific_rule_decides() {
    let policy = policy();
    assert_eq!(
        policy.rule("notes_write").unwrap().pattern,
        p("notes_write")
    );
    assert_eq!(policy.rule("notes_read").unwrap().pattern, p("notes_*"));
    assert_eq!(policy.rule("other").unwrap().pattern, p("*"));
    assert_eq!(policy.label("other"), "*");
    assert_eq!(ToolPolicy::default().label("x"), "(no rule)");
    assert_eq!(policy.scopes(), s("notes:read notes:write"));
}

#[test]
fn calls_need_the_resources_and_the_tools_scopes() {
    let policy = policy();
    let base = s("mcp");
    let read = s("mcp notes:read");
    assert_eq!(
        policy.call(&base, "notes_read", Some(caller(&read, None))),
        ToolDecision::Allowed
    );
    assert_eq!(
        policy.call(&base, "notes_write", Some(caller(&read, None))),
        ToolDecision::MissingScopes {
            needed: s("mcp notes:write"),
            missing: s("notes:write")
        }
    );
    // The exact rule replaces the prefix rule's scopes: notes_write needs only notes:write.
    let write = s("mcp notes:write");
    assert_eq!(
        policy.call(&base, "notes_write", Some(caller(&write, None))),
        ToolDecision::Allowed
    );
    assert_eq!(
        policy.call(&base, "notes_read", None),
        ToolDecision::Unauthenticated
    );
    assert_eq!(policy.call(&base, "health", None), ToolDecision::Allowed);
}

#[test]
fn allow_lists_limit_clients_and_keys() {
    let policy = policy();
    let all = s("mcp notes:read notes:write");
    let base = s("mcp");
    assert_eq!(
        policy.call(&base, "notes_write", Some(caller(&all, Some("limited")))),
        ToolDecision::NotAllowed
    );
    assert_eq!(
        policy.call(&base, "notes_read", Some(caller(&all, Some("limited")))),
        ToolDecision::Allowed
    );
    let gets = [p("get_*")];
    let key = Caller {
        scopes: &all,
        client_id: None,
        tools: Some(&gets),
    };
    assert_eq!(
        policy.call(&base, "get_note", Some(key)),
        ToolDecision::Allowed
    );
    assert_eq!(
        policy.call(&base, "notes_read", Some(key)),
        ToolDecision::NotAllowed
    );
    // Public tools stay public whatever the lists say.
    assert_eq!(
        policy.call(&base, "health", Some(key)),
        ToolDecision::Allowed
    );
    assert!(policy.visible(&base, "get_note", Some(key)));
    assert!(!policy.visible(&base, "notes_read", Some(key)));
    assert!(!policy.visible(&base, "notes_read", None));
    assert!(policy.visible(&base, "health", None));
}

#[test]
fn a_call_that_cannot_be_seen_needs_what_every_tool_needs() {
    let policy = policy();
    let base = s("mcp");
    assert_eq!(policy.strictest(&base), s("mcp notes:read notes:write"));
    let read = s("mcp notes:read");
    assert_eq!(
        policy.any_call(&base, caller(&read, None)),
        ToolDecision::MissingScopes {
            needed: s("mcp notes:read notes:write"),
            missing: s("notes:write")
        }
    );
    let all = s("mcp notes:read notes:write");
    assert_eq!(
        policy.any_call(&base, caller(&all, None)),
        ToolDecision::Allowed
    );
    // An allow-list leaves some tool out, whatever the scopes.
    assert_eq!(
        policy.any_call(&base, caller(&all, Some("limited"))),
        ToolDecision::NotAllowed
    );
    let gets = [p("get_*")];
    let everything = [p("get_*"), p("*")];
    for (list, verdict) in [
        (&gets[..], ToolDecision::NotAllowed),
        (&everything[..], ToolDecision::Allowed),
    ] {
        let key = Caller {
            scopes: &all,
            client_id: None,
            tools: Some(list),
        };
        assert_eq!(policy.any_call(&base, key), verdict);
    }
    // No rules: the resource's own scopes, as without tools.
    assert_eq!(
        ToolPolicy::default().any_call(&base, caller(&base, Some("limited"))),
        ToolDecision::Allowed
    );
}

#[test]
fn public_tools_need_a_token_unless_the_resource_opts_in() {
    let closed = ToolPolicy {
        anonymous: Anonymous::None,
        ..policy()
    };
    let none = s("");
    assert!(!closed.anonymous_open());
    assert_eq!(
        closed.call(&none, "health", None),
        ToolDecision::Unauthenticated
    );
    assert!(!closed.visible(&none, "health", None));
    // With a token a public tool still needs no further scope or allow-list.
    let limited = caller(&none, Some("limited"));
    assert_eq!(
        closed.call(&none, "health", Some(limited)),
        ToolDecision::Allowed
    );
    assert!(policy().anonymous_open());
    assert_eq!(policy().call(&none, "health", None), ToolDecision::Allowed);
    // Opting in without any public tool opens nothing.
    let no_public = ToolPolicy {
        rules: vec![rule("*", "", false)],
        ..policy()
    };
    assert!(!no_public.anonymous_open());
    assert_eq!(Anonymous::parse("public-tools"), Ok(Anonymous::PublicTools));
    assert_eq!(Anonymous::parse("none"), Ok(Anonymous::None));
    assert!(Anonymous::parse("public").is_err());
}

#[test]
fn anonymous_methods_are_the_handshake_not_the_list() {
    for method in ["initialize", "ping", "notifications/initialized"] {
        assert!(anonymous_method(method), "{method}");
    }
    for method in ["tools/list", "tools/call", "resources/read", "prompts/get"] {
        assert!(!anonymous_method(method), "{method}");
    }
}
