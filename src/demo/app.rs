//! `token-broker demo`: the development IdP, the broker wired to it, and an example
//! MCP server at `/mcp` on the broker's address, protected by the broker exactly as
//! an operator's MCP server would be. Prints what to try next; everything it prints
//! works as printed (a test runs it).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{self, Config, Environment};
use crate::dev_idp::{self, DevIdpConfig};
use crate::server;

/// Where the demo listens.
#[derive(Debug, Clone, Copy)]
pub struct DemoAddrs {
    pub broker: SocketAddr,
    pub idp: SocketAddr,
}

/// Where the demo keeps its state (`--store`).
pub use super::store::DemoStore;

/// The API behind the demo's MCP server, as the dev IdP issues tokens for it.
pub const NOTES_API: &str = "https://notes.example/api";
const EXCHANGE_CLIENT: &str = "demo-mcp";
const EXCHANGE_SECRET: &str = "demo-mcp-secret-change-me";
/// The enterprise user's MCP client: known to the dev IdP and, under the same id, to
/// the broker as a confidential client (ID-JAG's shared client id).
const AGENT: &str = "demo-agent";
const AGENT_SECRET: &str = "demo-agent-secret";
/// A machine client configured in `[[clients]]` (client credentials).
const MACHINE: &str = "demo-machine";
const MACHINE_SECRET: &str = "demo-machine-secret";

/// The broker configuration the demo runs with, for a broker at `broker`, the dev IdP
/// at `idp_url` and the example MCP server (which the broker's gateway fronts) at `mcp`.
pub fn broker_config(
    broker: SocketAddr,
    idp_url: &str,
    mcp: SocketAddr,
    store: &DemoStore,
    admin_token: &str,
) -> Result<Config, String> {
    let sections = store.config_sections()?;
    let text = format!(
        r#"
[server]
listen = "{broker}"
public_url = "http://{broker}"

[upstream]
issuer = "{idp_url}"
client_id = "token-broker"
client_secret = "token-broker-secret"

[[resources]]
uri = "http://{broker}/mcp"
name = "token-broker demo MCP server"
required_scopes = ["notes:read"]
scopes_supported = ["notes:read", "notes:write"]
# The MCP server gets a token for the notes API in place of the client's.
exchange_audience = "{NOTES_API}"

# Per-tool rules: alice's default login holds notes:read, so notes_write asks her to
# step up. Every request without a token, initialize included, gets the 401 that
# starts an MCP client's one login.
[[resources.tools]]
name = "notes_read"
scopes = ["notes:read"]

[[resources.tools]]
name = "notes_write"
scopes = ["notes:write"]

# Rate limits: per user and client, a budget per kind of credential (per minute), and
# whoami limited to 5 a minute on top, so the printed loop below meets a 429.
[resources.rate_limit]
key = ["subject", "client"]
window = "1m"
broker_token = 500
upstream_token = 500
api_key = 1000
anonymous = 100

[[resources.rate_limit.tools]]
name = "whoami"
budget = 5

# The same MCP server at a second path that lets tokenless callers call its public
# tool, health: the handshake passes without a token there, so scanners see it answered,
# and a tokenless GET stream gets 405 so that clients still start only one login.
[[resources]]
uri = "http://{broker}/mcp-public"
name = "token-broker demo MCP server (public health tool)"
required_scopes = ["notes:read"]
scopes_supported = ["notes:read", "notes:write"]
exchange_audience = "{NOTES_API}"
anonymous = "public-tools"

[[resources.tools]]
name = "notes_write"
scopes = ["notes:write"]

[[resources.tools]]
name = "health"
public = true

# The same MCP server for agents without a provider login (ID-JAG, client
# credentials): their grants hold no provider token, so no exchange here.
[[resources]]
uri = "http://{broker}/mcp-agents"
name = "token-broker demo MCP server (for agents)"
required_scopes = ["notes:read"]
scopes_supported = ["notes:read", "notes:write"]

# The broker fronts the MCP server itself: tool rules from the JSON-RPC body,
# tools/list cut down to what the caller may call, the client's token replaced.
[[gateway]]
path = "/mcp"
upstream = "http://{mcp}/mcp"

[[gateway]]
path = "/mcp-public"
upstream = "http://{mcp}/mcp"

[[gateway]]
path = "/mcp-agents"
upstream = "http://{mcp}/mcp"

[[exchange.audiences]]
audience = "{NOTES_API}"
scopes = ["notes:read", "notes:write"]

# An MCP server of your own exchanging tokens itself (RFC 8693).
[[exchange.clients]]
client_id = "{EXCHANGE_CLIENT}"
client_secret = "{EXCHANGE_SECRET}"
audiences = ["{NOTES_API}"]

# Enterprise-managed authorization: the development IdP's ID-JAGs, presented by the
# confidential client demo-agent, buy tokens without a consent page.
[[enterprise.issuers]]
issuer = "{idp_url}"
clients = ["{AGENT}"]
max_scopes = ["notes:read", "notes:write"]

# The admin API (/admin/…, `token-broker admin`), with a token made for this run.
[admin]
token = "{admin_token}"

# A machine client (the MCP OAuth client-credentials extension): a CI job or an agent
# without a user gets tokens for itself, for this resource, with at most these scopes.
[[clients]]
client_id = "{MACHINE}"
client_secret = "{MACHINE_SECRET}"
resources = ["http://{broker}/mcp-agents"]
scopes = ["notes:read"]

[log]
format = "pretty"
level = "info"

{sections}"#
    );
    config::load_str(&text, &Environment::default()).map_err(|e| e.to_string())
}

/// A fresh admin token for one run of the demo: 256 random bits, hex.
fn random_admin_token() -> String {
    use rand::Rng;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the demo prints once both servers listen.
pub fn instructions(broker: SocketAddr, idp_url: &str, admin_token: &str) -> String {
    let mcp = format!("http://{broker}/mcp");
    let headers =
        "-H 'content-type: application/json' -H 'accept: application/json, text/event-stream'";
    let redirect = "http://127.0.0.1:33418/callback";
    let redirect_q = "http%3A%2F%2F127.0.0.1%3A33418%2Fcallback";
    // With two resources the broker needs to be told which one (RFC 8707).
    let mcp_q = format!("http%3A%2F%2F{broker}%2Fmcp");
    // RFC 7636 appendix B.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    format!(
        r#"token-broker demo (development only: a development IdP with no login form; state in memory unless --store says otherwise)

  broker (authorization server)  http://{broker}
  example MCP server (protected) {mcp}  (the broker's gateway in front of it)
    and again, with a public tool  {mcp}-public
    and again, for agents          {mcp}-agents  (ID-JAG and client credentials)
  development IdP (user alice)   {idp_url}

Behind nginx instead of the gateway, the broker answers auth_request (README.md,
"Putting it in front of an MCP server"):
    location /mcp {{
        auth_request /_token_broker_verify;   # -> http://{broker}/auth/verify
        auth_request_set $downstream $upstream_http_x_auth_access_token;
        proxy_set_header Authorization "Bearer $downstream";
        proxy_pass http://127.0.0.1:3000;     # your MCP server
    }}

Try it (each line works as printed):

  # the broker's metadata, and the MCP server's protected-resource metadata
  curl -s http://{broker}/.well-known/oauth-authorization-server
  curl -s http://{broker}/.well-known/oauth-protected-resource/mcp
  # register a client as an MCP client would (RFC 7591)
  curl -s http://{broker}/oauth/register -H 'content-type: application/json' -d '{{"client_name":"demo client","redirect_uris":["http://127.0.0.1:33418/callback"],"token_endpoint_auth_method":"none"}}'
  # without a token the MCP server answers 401 and says where to authorize, even to initialize
  curl -si {mcp} {headers} -d '{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"curl","version":"1"}}}}}}'
  # at {mcp}-public (anonymous = "public-tools") its public tool, health, needs no token
  curl -s {mcp}-public {headers} -d '{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"health","arguments":{{}}}}}}'
  # a token for the MCP server from the development IdP (service account demo-service)
  TOKEN=$(curl -s -u demo-service:demo-service-secret -d grant_type=client_credentials -d scope=notes:read -d resource={mcp} {idp_url}/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  # call a tool with it
  curl -s {mcp} {headers} -H "authorization: Bearer $TOKEN" -d '{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"whoami","arguments":{{}}}}}}'
  # whoami has a budget of its own, 5 a minute (one spent just above): past it, 429 with Retry-After
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{{http_code}} ' {mcp} {headers} -H "authorization: Bearer $TOKEN" -d '{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"whoami","arguments":{{}}}}}}'; done; echo
  # forward-auth, as nginx auth_request would ask for a 2026-07-28 tools/list POSTed to /mcp
  curl -si http://{broker}/auth/verify -H 'x-original-uri: /mcp' -H 'x-original-method: POST' -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/list' -H "authorization: Bearer $TOKEN"

Enterprise-managed authorization (ID-JAG): the IdP vouches for alice, no consent page:

  # demo-agent signs alice in at the IdP (it has no login form) and gets an ID token
  IDP_CODE=$(curl -s -o /dev/null -w '%{{redirect_url}}' "{idp_url}/authorize?response_type=code&client_id={AGENT}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=openid&state=s&nonce=n&code_challenge={challenge}&code_challenge_method=S256" | sed -E 's/.*[?&]code=([^&]+).*/\1/')
  ID_TOKEN=$(curl -s -u {AGENT}:{AGENT_SECRET} {idp_url}/token -d grant_type=authorization_code -d code=$IDP_CODE -d redirect_uri=http://127.0.0.1/callback -d code_verifier={verifier} | sed -E 's/.*"id_token":"([^"]+)".*/\1/')
  # trades it at the IdP for an ID-JAG whose audience is the broker (RFC 8693)
  ID_JAG=$(curl -s -u {AGENT}:{AGENT_SECRET} {idp_url}/token -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange -d requested_token_type=urn:ietf:params:oauth:token-type:id-jag -d subject_token_type=urn:ietf:params:oauth:token-type:id_token -d subject_token=$ID_TOKEN -d audience=http://{broker} -d resource={mcp}-agents -d scope=notes:read | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  # and presents it to the broker (RFC 7523 jwt-bearer): an access token for the MCP server
  ENTERPRISE=$(curl -s -u {AGENT}:{AGENT_SECRET} http://{broker}/oauth/token -d grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer -d assertion=$ID_JAG)
  echo "$ENTERPRISE"
  # whoami as alice with it, through the gateway
  curl -s {mcp}-agents {headers} -H "authorization: Bearer $(echo "$ENTERPRISE" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')" -d '{{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{{"name":"whoami","arguments":{{}}}}}}'

Machine clients (OAuth client credentials): a CI job or an agent without a user:

  # demo-machine, a [[clients]] entry, gets a token for the MCP server for itself (no refresh token)
  MACHINE=$(curl -s -u {MACHINE}:{MACHINE_SECRET} http://{broker}/oauth/token -d grant_type=client_credentials -d resource={mcp}-agents -d scope=notes:read)
  echo "$MACHINE"
  # whoami as demo-machine with it
  curl -s {mcp}-agents {headers} -H "authorization: Bearer $(echo "$MACHINE" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')" -d '{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"whoami","arguments":{{}}}}}}'

Log in as an MCP client would (authorization code + PKCE through the broker's consent page):

  # a public client with a loopback redirect URI, as Claude Code or VS Code register
  CLIENT=$(curl -s http://{broker}/oauth/register -H 'content-type: application/json' -d '{{"client_name":"demo login","redirect_uris":["{redirect}"],"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none"}}' | sed -E 's/.*"client_id":"([^"]+)".*/\1/')
  AUTHZ="http://{broker}/oauth/authorize?response_type=code&client_id=$CLIENT&redirect_uri={redirect_q}&code_challenge={challenge}&code_challenge_method=S256&state=demo&scope=notes%3Aread&resource={mcp_q}"
  # open "$AUTHZ" in a browser and press Approve (you land on {redirect}?code=...), or let curl press it:
  PAGE=$(curl -s -c /tmp/token-broker-demo.jar "$AUTHZ")
  UPSTREAM=$(curl -s -b /tmp/token-broker-demo.jar -o /dev/null -w '%{{redirect_url}}' http://{broker}/oauth/consent -d decision=approve -d session=$(echo "$PAGE" | sed -nE 's/.*name="session" value="([^"]+)".*/\1/p') -d csrf=$(echo "$PAGE" | sed -nE 's/.*name="csrf" value="([^"]+)".*/\1/p'))
  CALLBACK=$(curl -s -o /dev/null -w '%{{redirect_url}}' "$UPSTREAM")
  CODE=$(curl -s -b /tmp/token-broker-demo.jar -o /dev/null -w '%{{redirect_url}}' "$CALLBACK" | sed -E 's/.*[?&]code=([^&]+).*/\1/')
  # the code for tokens (the verifier is RFC 7636's example, matching the challenge above)
  LOGIN=$(curl -s http://{broker}/oauth/token -d grant_type=authorization_code -d client_id=$CLIENT -d code=$CODE -d redirect_uri={redirect} -d code_verifier={verifier})
  echo "$LOGIN"
  # whoami as alice, with the broker's own access token; the MCP server received a notes-API token instead
  curl -s {mcp} {headers} -H "authorization: Bearer $(echo "$LOGIN" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')" -d '{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"whoami","arguments":{{}}}}}}'
  # what an MCP server of your own does with it: exchange it for a notes-API token (RFC 8693)
  curl -s -u {EXCHANGE_CLIENT}:{EXCHANGE_SECRET} http://{broker}/oauth/token -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange -d subject_token_type=urn:ietf:params:oauth:token-type:access_token -d audience={NOTES_API} -d subject_token=$(echo "$LOGIN" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  # a new token pair from the refresh token (the old one is spent)
  curl -s http://{broker}/oauth/token -d grant_type=refresh_token -d client_id=$CLIENT -d refresh_token=$(echo "$LOGIN" | sed -E 's/.*"refresh_token":"([^"]+)".*/\1/')

Operate it: the admin API (README.md, "Operating"), its token made for this run:

  export TOKEN_BROKER_ADMIN_URL=http://{broker} TOKEN_BROKER_ADMIN_TOKEN={admin_token}
  # alice's grants (the login above, the ID-JAG one)
  token-broker admin grants list --subject alice
  # offboarding alice: every grant of hers revoked, on every replica at once
  curl -s -X DELETE "http://{broker}/admin/grants?subject=alice" -H "authorization: Bearer $TOKEN_BROKER_ADMIN_TOKEN"
  # the same from the command line (a second time: nothing left to revoke)
  token-broker admin offboard alice
  # alice's access token from the login above is refused now: 401
  curl -s -o /dev/null -w '%{{http_code}}' {mcp} {headers} -H "authorization: Bearer $(echo "$LOGIN" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')" -d '{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"whoami","arguments":{{}}}}}}'

Real MCP clients do all of this themselves: `claude mcp add --transport http demo {mcp}`, VS Code
("MCP: Add Server" → HTTP → {mcp}) or the MCP Inspector (npx @modelcontextprotocol/inspector,
transport "Streamable HTTP", URL {mcp}) find the broker from the 401, register, open the consent
page in your browser and refresh on their own.

Ctrl-C stops the demo.
"#
    )
}

/// Registers demo-agent at the broker as the confidential client the dev IdP's
/// ID-JAGs name (again on every start: a `--store` keeps it, unchanged).
async fn enterprise_client(store: &dyn crate::store::Store, now: u64) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    store
        .put_client(crate::store::StoredClient {
            client_id: AGENT.to_owned(),
            secret_hash: Some(Sha256::digest(AGENT_SECRET.as_bytes()).into()),
            metadata: serde_json::json!({
                "client_name": "demo agent (enterprise-managed)",
                "token_endpoint_auth_method": "client_secret_basic",
            }),
            fingerprint: [0; 32],
            issued_at: now,
            last_used_at: None,
            origin: crate::store::ClientOrigin::Local,
        })
        .await
        .map_err(|e| format!("cannot register {AGENT}: {e}"))
}

/// Runs the demo until `shutdown` resolves.
pub async fn run(
    addrs: DemoAddrs,
    store: DemoStore,
    shutdown: impl Future<Output = ()> + 'static,
) -> Result<(), String> {
    let idp_listener =
        TcpListener::bind(addrs.idp).map_err(|e| format!("cannot listen on {}: {e}", addrs.idp))?;
    let broker_listener = TcpListener::bind(addrs.broker)
        .map_err(|e| format!("cannot listen on {}: {e}", addrs.broker))?;
    let broker_addr = broker_listener.local_addr().map_err(|e| e.to_string())?;
    let clock = Clock::system();
    let idp = dev_idp::start(DevIdpConfig::default(), idp_listener, clock.clone())
        .map_err(|e| e.to_string())?;
    let idp_url = idp.url.clone();
    // The example MCP server on a loopback port of its own; only the gateway calls it.
    let mcp_listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let mcp_addr = mcp_listener.local_addr().map_err(|e| e.to_string())?;
    let mcp_server = super::mcp::serve_behind_gateway(mcp_listener).map_err(|e| e.to_string())?;
    let admin_token = random_admin_token();
    let config = broker_config(broker_addr, &idp_url, mcp_addr, &store, &admin_token)?;
    let broker = server::start_with(Arc::new(config), broker_listener, clock, |_| {})
        .map_err(|e| e.to_string())?;
    enterprise_client(&*broker.state.store, broker.state.clock.unix()).await?;
    let idp_handle = idp.server.handle();
    let mcp_handle = mcp_server.handle();
    actix_web::rt::spawn(idp.server);
    actix_web::rt::spawn(mcp_server);
    println!("{}", instructions(broker_addr, &idp_url, &admin_token));
    let result = broker
        .serve_until(shutdown)
        .await
        .map_err(|e| e.to_string());
    idp_handle.stop(true).await;
    mcp_handle.stop(true).await;
    result
}
