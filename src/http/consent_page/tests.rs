use super::*;

fn view<'a>(name: &'a str, redirect: &'a str) -> ConsentView<'a> {
    ConsentView {
        client_name: Some(name),
        client_id: "c1",
        from_document: false,
        redirect_uri: redirect,
        registered_redirect_uris: &[],
        scopes: vec!["notes:read"],
        resource: Some("https://mcp.example/mcp"),
        session: "sess",
        csrf: "tok",
        action: "/oauth/consent",
        offer_remember: true,
    }
}

#[test]
fn untrusted_names_cannot_inject_markup() {
    let page = render(&view("<script>alert(1)</script>\"", "https://claude.ai/cb"));
    assert!(!page.contains("<script>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;"));
    assert!(page.contains("<strong>claude.ai</strong>"));
    assert!(page.contains("Client ID <code>c1</code>"));
    assert!(!page.contains("class=\"warn\""));
}

#[test]
fn hidden_controls_are_stripped_and_private_use_schemes_are_not_hosts() {
    let page = render(&view(
        "Evil\u{202E}ppA dooG",
        "cursor://anysphere.cursor-retrieval/cb",
    ));
    assert!(!page.contains('\u{202E}'));
    assert!(page.contains("EvilppA dooG"));
    assert!(!page.contains("<strong>anysphere.cursor-retrieval</strong>"));
    assert!(page.contains("<code>cursor:</code> links"));
    assert!(page.contains("<code>cursor://anysphere.cursor-retrieval/cb</code>"));
    assert!(page.contains("class=\"warn\""));
    let mut document = view("Doc", "https://app.example/cb");
    document.client_id = "https://client.example/meta.json";
    document.from_document = true;
    let page = render(&document);
    assert!(page.contains("Described by <strong>client.example</strong>"));
}

#[test]
fn the_redirect_host_is_shown_and_localhost_only_clients_get_the_strong_warning() {
    let only_local = ["http://127.0.0.1/cb".to_owned()];
    let mut loopback = view("Claude Code", "http://127.0.0.1:5555/cb");
    loopback.registered_redirect_uris = &only_local;
    let page = render(&loopback);
    assert!(page.contains("<strong>127.0.0.1</strong>, an application on this device"));
    assert!(page.contains("Every address it registered"), "{page}");
    let mixed = [
        "https://vscode.dev/redirect".to_owned(),
        "http://127.0.0.1/".to_owned(),
    ];
    let mut web = view("VS Code", "https://vscode.dev/redirect");
    web.registered_redirect_uris = &mixed;
    let page = render(&web);
    assert!(
        page.contains("sent to <strong>vscode.dev</strong>"),
        "{page}"
    );
    assert!(!page.contains("class=\"warn\""), "{page}");
    let mut local = view("VS Code", "http://127.0.0.1:40000/");
    local.registered_redirect_uris = &mixed;
    let page = render(&local);
    assert!(page.contains("goes to your own device"), "{page}");
    assert!(!page.contains("Every address"), "{page}");
}

#[test]
fn loopback_clients_get_a_warning_and_the_form_carries_its_tokens() {
    let page = render(&view("Claude Code", "http://127.0.0.1:5555/callback"));
    assert!(page.contains("class=\"warn\""));
    assert!(page.contains("name=\"csrf\" value=\"tok\""));
    assert!(page.contains("name=\"session\" value=\"sess\""));
    assert!(page.contains("<code>notes:read</code>"));
    assert!(!page.contains("<script"), "no JavaScript");
}
