//! `token-broker admin …`: the admin API's client. It talks to a running broker over
//! HTTP (`--url`/`TOKEN_BROKER_ADMIN_URL`, `--token`/`TOKEN_BROKER_ADMIN_TOKEN`) and
//! prints tables, or with `--json` the API's own JSON. Exit status 0 on success, 1
//! when the broker refused or could not be reached (its error on standard error), 2
//! for missing connection settings.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use super::table::{Column, col, record, render};

#[derive(Args)]
pub struct AdminArgs {
    /// The broker's base URL (its `server.public_url`, or the management address).
    #[arg(
        long,
        env = "TOKEN_BROKER_ADMIN_URL",
        value_name = "URL",
        global = true
    )]
    url: Option<String>,
    /// The admin token (`admin.token`). Prefer the environment variable: a flag shows
    /// in the process list.
    #[arg(
        long,
        env = "TOKEN_BROKER_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        global = true
    )]
    token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Registered clients.
    #[command(subcommand)]
    Clients(Clients),
    /// Grants: who authorized which client for what.
    #[command(subcommand)]
    Grants(Grants),
    /// Logins in progress.
    #[command(subcommand)]
    Sessions(Sessions),
    /// Revoke every grant of SUBJECT on every replica at once (an employee leaves, a
    /// laptop is lost): their clients' next requests are refused.
    Offboard {
        #[arg(allow_hyphen_values = true)]
        subject: String,
    },
}

#[derive(Subcommand)]
enum Clients {
    List(PageArgs),
    Show {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Revoke the client's grants and remove it (registered clients only).
    Delete {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Subcommand)]
enum Grants {
    List {
        #[arg(long, allow_hyphen_values = true)]
        subject: Option<String>,
        #[arg(long, allow_hyphen_values = true)]
        client_id: Option<String>,
        #[arg(long)]
        resource: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    Show {
        #[arg(allow_hyphen_values = true)]
        grant_id: String,
    },
    /// Revoke one grant.
    Revoke {
        #[arg(allow_hyphen_values = true)]
        grant_id: String,
    },
    /// Revoke every grant of a client.
    RevokeClient {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Subcommand)]
enum Sessions {
    List {
        #[arg(long, allow_hyphen_values = true)]
        client_id: Option<String>,
        #[arg(long)]
        resource: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Args)]
struct PageArgs {
    /// Rows per page (1–500; the broker's default is 50).
    #[arg(long)]
    limit: Option<u16>,
    /// Continue after this cursor (printed under a page that has more).
    #[arg(long, allow_hyphen_values = true)]
    cursor: Option<String>,
    /// Every page, not just one.
    #[arg(long)]
    all: bool,
}

const CLIENT: &[Column] = &[
    col("CLIENT_ID", "client_id"),
    col("KIND", "kind"),
    col("NAME", "client_name"),
    col("CREATED", "created_at"),
    col("LAST_USED", "last_used_at"),
];
const CLIENT_DETAIL: &[Column] = &[
    col("client_id", "client_id"),
    col("kind", "kind"),
    col("stored", "stored"),
    col("client_name", "client_name"),
    col("redirect_uris", "redirect_uris"),
    col("grant_types", "grant_types"),
    col("scope", "scope"),
    col("confidential", "confidential"),
    col("upstream_client_id", "upstream_client_id"),
    col("created_at", "created_at"),
    col("last_used_at", "last_used_at"),
];
const GRANT: &[Column] = &[
    col("GRANT_ID", "grant_id"),
    col("SUBJECT", "subject"),
    col("CLIENT_ID", "client_id"),
    col("RESOURCE", "resource"),
    col("SCOPE", "scope"),
    col("CREATED", "created_at"),
    col("REFRESHED", "last_refreshed_at"),
    col("REVOKED", "revoked_at"),
];
const GRANT_DETAIL: &[Column] = &[
    col("grant_id", "grant_id"),
    col("subject", "subject"),
    col("client_id", "client_id"),
    col("resource", "resource"),
    col("scope", "scope"),
    col("created_at", "created_at"),
    col("last_refreshed_at", "last_refreshed_at"),
    col("revoked", "revoked"),
    col("revoked_at", "revoked_at"),
];
const SESSION: &[Column] = &[
    col("ID", "id"),
    col("CLIENT_ID", "client_id"),
    col("RESOURCE", "resource"),
    col("SCOPE", "scope"),
    col("APPROVED", "approved"),
    col("EXPIRES", "expires_at"),
];

pub fn run(args: AdminArgs) -> ExitCode {
    let (Some(url), Some(token)) = (args.url.as_deref(), args.token.as_deref()) else {
        eprintln!(
            "name the broker with --url or TOKEN_BROKER_ADMIN_URL, and the admin token with \
             TOKEN_BROKER_ADMIN_TOKEN (or --token)"
        );
        return ExitCode::from(2);
    };
    let api = match Api::new(url, token) {
        Ok(api) => api,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let outcome = actix_web::rt::System::new().block_on(execute(&api, args.what, args.json));
    match outcome {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(api: &Api, what: What, json: bool) -> Result<String, String> {
    let show = |value: Value, columns: &[Column]| {
        if json {
            Ok(format!("{value:#}\n"))
        } else {
            Ok(record(columns, &value))
        }
    };
    match what {
        What::Clients(Clients::List(page)) => {
            list(api, &["clients"], vec![], page, CLIENT, json).await
        }
        What::Clients(Clients::Show { client_id }) => show(
            api.get(&["clients", &client_id], vec![]).await?,
            CLIENT_DETAIL,
        ),
        What::Clients(Clients::Delete { client_id }) => {
            let done = api
                .send(Method::DELETE, &["clients", &client_id], vec![])
                .await?;
            said(json, &done, || {
                format!(
                    "deleted client {client_id}; {} grant(s) revoked\n",
                    done["revoked"]
                )
            })
        }
        What::Grants(Grants::List {
            subject,
            client_id,
            resource,
            page,
        }) => {
            let filters = [
                ("subject", subject),
                ("client_id", client_id),
                ("resource", resource),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            list(api, &["grants"], filters, page, GRANT, json).await
        }
        What::Grants(Grants::Show { grant_id }) => {
            show(api.get(&["grants", &grant_id], vec![]).await?, GRANT_DETAIL)
        }
        What::Grants(Grants::Revoke { grant_id }) => {
            let done = api
                .send(Method::DELETE, &["grants", &grant_id], vec![])
                .await?;
            said(json, &done, || {
                format!("revoked {} grant(s)\n", done["revoked"])
            })
        }
        What::Grants(Grants::RevokeClient { client_id }) => {
            revoke_every(api, json, ("client_id", "client"), client_id).await
        }
        What::Sessions(Sessions::List {
            client_id,
            resource,
            page,
        }) => {
            let filters = [("client_id", client_id), ("resource", resource)]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect();
            list(api, &["sessions"], filters, page, SESSION, json).await
        }
        What::Offboard { subject } => {
            revoke_every(api, json, ("subject", "subject"), subject).await
        }
    }
}

/// `DELETE /admin/grants?<key>=<value>`: every grant of a client or a subject.
async fn revoke_every(
    api: &Api,
    json: bool,
    (key, kind): (&'static str, &str),
    value: String,
) -> Result<String, String> {
    let done = api
        .send(Method::DELETE, &["grants"], vec![(key, value.clone())])
        .await?;
    said(json, &done, || {
        format!("revoked {} grant(s) of {kind} {value}\n", done["revoked"])
    })
}

/// The API's answer in JSON mode, else `text`.
fn said(json: bool, value: &Value, text: impl FnOnce() -> String) -> Result<String, String> {
    Ok(if json { format!("{value:#}\n") } else { text() })
}

/// One page (or, with `--all`, every page) of a listing.
async fn list(
    api: &Api,
    path: &[&str],
    filters: Vec<(&'static str, String)>,
    page: PageArgs,
    columns: &[Column],
    json: bool,
) -> Result<String, String> {
    let mut items = Vec::new();
    let mut cursor = page.cursor;
    let next = loop {
        let mut query = filters.clone();
        query.extend(page.limit.map(|l| ("limit", l.to_string())));
        query.extend(cursor.take().map(|c| ("cursor", c)));
        let answer = api.get(path, query).await?;
        items.extend(answer["items"].as_array().cloned().unwrap_or_default());
        match answer["next_cursor"].as_str() {
            Some(next) if page.all => cursor = Some(next.to_owned()),
            other => break other.map(str::to_owned),
        }
    };
    if json {
        return Ok(format!(
            "{:#}\n",
            json!({ "items": items, "next_cursor": next })
        ));
    }
    let mut text = render(columns, &items);
    if let Some(next) = next {
        text.push_str(&format!("(more: --cursor {next})\n"));
    }
    Ok(text)
}

/// The admin API at a broker.
struct Api {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl Api {
    fn new(url: &str, token: &str) -> Result<Self, String> {
        let base = Url::parse(url).map_err(|e| format!("--url `{url}` is not a URL: {e}"))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(format!("--url `{url}` must be an http(s) URL"));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("token-broker-admin/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            base,
            token: token.to_owned(),
        })
    }

    async fn get(&self, path: &[&str], query: Vec<(&str, String)>) -> Result<Value, String> {
        self.send(Method::GET, path, query).await
    }

    /// `/admin/<path…>` (each part percent-encoded as one segment) with `query`.
    async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: Vec<(&str, String)>,
    ) -> Result<Value, String> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| "the URL cannot take a path".to_owned())?
            .pop_if_empty()
            .push("admin")
            .extend(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let response = self
            .http
            .request(method, url.clone())
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| format!("cannot reach the broker at {}: {e}", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let description = body["error_description"]
            .as_str()
            .or(body["error"].as_str())
            .unwrap_or("no explanation");
        Err(format!(
            "{} {}: HTTP {status}: {description}",
            "error:",
            url.path()
        ))
    }
}

#[cfg(test)]
mod hyphen_tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn parsed(args: &[&str]) -> Option<super::AdminArgs> {
        let argv = ["token-broker", "admin"].iter().chain(args).copied();
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Admin(args),
            }) => Some(args),
            _ => None,
        }
    }

    /// Ids are base64url: one in eight begins with `-`, and must not read as a flag,
    /// while the flags after it still do.
    #[test]
    fn ids_beginning_with_a_hyphen_are_ids() {
        let args = parsed(&["sessions", "list", "--client-id", "-YVOt", "--json"]);
        assert!(args.as_ref().is_some_and(|a| a.json));
        assert!(matches!(
            args.map(|a| a.what),
            Some(super::What::Sessions(super::Sessions::List { client_id: Some(id), .. })) if id == "-YVOt"
        ));
        let args = parsed(&["clients", "show", "-YVOt", "--json"]);
        assert!(args.as_ref().is_some_and(|a| a.json));
        assert!(matches!(
            args.map(|a| a.what),
            Some(super::What::Clients(super::Clients::Show { client_id })) if client_id == "-YVOt"
        ));
        assert!(matches!(
            parsed(&["offboard", "-alice"]).map(|a| a.what),
            Some(super::What::Offboard { subject }) if subject == "-alice"
        ));
    }
}
