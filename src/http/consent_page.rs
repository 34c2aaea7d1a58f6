//! The consent page: server-rendered HTML, no JavaScript, readable on a phone. It
//! names the client — its self-chosen name beside what the broker vouches for: the
//! `client_id`, or the host serving its metadata document — where it will send the
//! user back (the redirect URI's host, prominently; with a warning when the answer
//! goes to a loopback port or a private-use scheme, and a stronger one when every
//! address the client has is such a place), what it asks for and for which resource. Every value is
//! escaped, and stripped of control and format characters (bidi overrides,
//! zero-width): client names and URIs come from untrusted registrations, and clients
//! stored before registration refused such characters may still carry them.

use url::Url;

use crate::domain::display_text::strip_hidden_controls;
use crate::domain::redirect_uri::is_loopback_http;
use crate::redact::Redacted;

/// What the page shows. `Debug` hides the CSRF token.
#[derive(Clone)]
pub struct ConsentView<'a> {
    pub client_name: Option<&'a str>,
    pub client_id: &'a str,
    /// The client is described by a metadata document at the `client_id` URL.
    pub from_document: bool,
    pub redirect_uri: &'a str,
    /// Every redirect URI the client registered (or its document lists).
    pub registered_redirect_uris: &'a [String],
    pub scopes: Vec<&'a str>,
    pub resource: Option<&'a str>,
    pub session: &'a str,
    pub csrf: &'a str,
    /// Where the form posts (the broker's consent endpoint).
    pub action: &'a str,
    /// Offer "remember this decision" (approvals are remembered at all).
    pub offer_remember: bool,
}

impl std::fmt::Debug for ConsentView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentView")
            .field("client_name", &self.client_name)
            .field("client_id", &self.client_id)
            .field("from_document", &self.from_document)
            .field("redirect_uri", &self.redirect_uri)
            .field("registered_redirect_uris", &self.registered_redirect_uris)
            .field("scopes", &self.scopes)
            .field("resource", &self.resource)
            .field("session", &self.session)
            .field("csrf", &Redacted)
            .field("action", &self.action)
            .field("offer_remember", &self.offer_remember)
            .finish()
    }
}

/// Escapes text for HTML element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            other => out.push(other),
        }
    }
    out
}

/// Untrusted text as shown: without hidden controls, escaped.
fn shown(text: &str) -> String {
    escape(&strip_hidden_controls(text))
}

/// Where a redirect URI sends the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// An https (or other http) URL: a web host the user can judge.
    Web,
    /// Loopback http (RFC 8252 §7.3): whatever program listens on that port.
    Loopback,
    /// A private-use scheme (RFC 8252 §7.1): whichever app claimed it (§8.6).
    App,
    Unknown,
}

fn place(uri: &str) -> Place {
    match Url::parse(uri) {
        Ok(url) if is_loopback_http(&url) => Place::Loopback,
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host_str().is_some() => {
            Place::Web
        }
        Ok(_) => Place::App,
        Err(_) => Place::Unknown,
    }
}

/// Where the client will receive the user, as HTML: the redirect URI's host, shown
/// prominently (MCP: "MUST clearly display the redirect URI hostname"). For a
/// private-use scheme (`com.example.app:/cb`, `cursor://anysphere.cursor-retrieval/…`)
/// what follows the scheme is whatever the app chose, so the whole URI is shown, with
/// the scheme, never as a host.
fn destination(redirect_uri: &str) -> String {
    let url = Url::parse(redirect_uri).ok();
    let host = url.as_ref().and_then(Url::host_str).map(shown);
    match (place(redirect_uri), url, host) {
        (Place::Loopback, _, Some(host)) => {
            format!("<strong>{host}</strong>, an application on this device")
        }
        (Place::Web, _, Some(host)) => format!("<strong>{host}</strong>"),
        (Place::App, Some(url), _) => format!(
            "an app on your device that opens <code>{}:</code> links (<code>{}</code>)",
            shown(url.scheme()),
            shown(url.as_str())
        ),
        _ => "an unknown place".to_owned(),
    }
}

/// Warnings about who may receive the answer (MCP 2026-07-28 "Localhost Redirect URI
/// Risks": warn for localhost-only clients). A loopback port or a private-use scheme
/// can be claimed by any program on the device, so the name and identity above it
/// prove nothing about who is asking; when every URI the client has is such a place,
/// anyone running software on the device can be this client.
fn warnings(view: &ConsentView<'_>) -> Vec<String> {
    let presented = place(view.redirect_uri);
    let local = |p: Place| matches!(p, Place::Loopback | Place::App);
    let only_local = !view.registered_redirect_uris.is_empty()
        && view
            .registered_redirect_uris
            .iter()
            .all(|uri| local(place(uri)));
    let mut out = Vec::new();
    if only_local {
        let who = if view.from_document {
            "its metadata document lists"
        } else {
            "it registered"
        };
        out.push(format!(
            "Every address {who} for receiving your answer is on your own device: any \
             program running on your device could be using this client's name and \
             identity. Approve only if you just started this login yourself, from an \
             application you trust."
        ));
    } else if local(presented) {
        out.push(
            "This answer goes to your own device rather than to the client's website: any \
             program running on your device could have started this login. Approve only \
             if you just started it yourself, from an application you trust."
                .to_owned(),
        );
    }
    if presented == Place::App {
        out.push("Any app installed on your device can claim this kind of link.".to_owned());
    }
    out
}

/// What the broker can vouch for about the client: its metadata document's host,
/// or the `client_id` it registered under.
fn identity(view: &ConsentView<'_>) -> String {
    let host = view
        .from_document
        .then(|| Url::parse(view.client_id).ok())
        .flatten()
        .and_then(|url| url.host_str().map(str::to_owned));
    match host {
        Some(host) => format!(
            "Described by <strong>{}</strong> (<code>{}</code>)",
            shown(&host),
            shown(view.client_id)
        ),
        None => format!("Client ID <code>{}</code>", shown(view.client_id)),
    }
}

pub fn render(view: &ConsentView<'_>) -> String {
    let name = view
        .client_name
        .map(strip_hidden_controls)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| strip_hidden_controls(view.client_id));
    let name = escape(&name);
    let identity = identity(view);
    let destination = destination(view.redirect_uri);
    let warning: String = warnings(view)
        .iter()
        .map(|w| format!("<p class=\"warn\">{w}</p>\n"))
        .collect();
    let scopes = if view.scopes.is_empty() {
        "<li>basic access</li>".to_owned()
    } else {
        view.scopes
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", escape(s)))
            .collect()
    };
    let resource = view
        .resource
        .map(|r| format!("<p>Resource: <code>{}</code></p>", escape(r)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Allow {name}?</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 32rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
.warn {{ background: #fff4ce; border-left: 4px solid #c9a100; padding: .5rem .75rem; }}
button {{ font-size: 1rem; padding: .6rem 1.2rem; margin-right: .5rem; }}
code {{ word-break: break-all; }}
</style>
</head>
<body>
<h1>Allow <strong>{name}</strong>?</h1>
<p class="client">{identity}</p>
<p><strong>{name}</strong> wants to act on your behalf.</p>
<p class="destination">Your answer will be sent to {destination}.</p>
{warning}
<p>It asks for:</p>
<ul>{scopes}</ul>
{resource}
<form method="post" action="{action}">
<input type="hidden" name="session" value="{session}">
<input type="hidden" name="csrf" value="{csrf}">
{remember}<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</body>
</html>
"#,
        remember = if view.offer_remember {
            "<p><label><input type=\"checkbox\" name=\"remember\" value=\"on\"> Remember this decision on this browser</label></p>\n"
        } else {
            ""
        },
        action = escape(view.action),
        session = escape(view.session),
        csrf = escape(view.csrf),
    )
}

/// A page for a login that cannot go on and must not be sent back to the client
/// (unknown client, unregistered redirect URI, expired or forged session).
pub fn error_page(title: &str, message: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ font-family: system-ui, sans-serif; max-width: 32rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}</style>
</head>
<body>
<h1>{title}</h1>
<p>{message}</p>
<p>Start the login again from your application.</p>
</body>
</html>
"#,
        title = escape(title),
        message = escape(message),
    )
}

#[cfg(test)]
mod tests;
