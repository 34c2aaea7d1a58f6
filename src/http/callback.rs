//! `GET /oauth/callback`: the provider's answer. Takes the login session once, by its
//! `state` and only in the browser that started it; redeems the provider's code with
//! the broker's PKCE verifier; validates the ID token (signature, issuer, audience,
//! nonce, expiry); stores the grant; and sends the client a one-time code of its own
//! with `state` and `iss` (RFC 9207).
//!
//! Remembered approvals are settled here, where the user is first known: one asked
//! for on the consent page is remembered for this browser and this user; a login that
//! skipped the consent page on the strength of an approval given by another user (a
//! shared browser) is not completed — the provider's answer is dropped and the
//! consent page shown, as if nothing were remembered.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::authorize::{show_consent, start_session};
use super::clients::{self, KnownClient};
use super::login::{self, error_page, error_to_client, session_error_page};
use super::login_cookies::Approved;
use super::params::Params;
use crate::actors::sessions::{
    CodeGrant, MintProxyCode, Remember, SessionError, TakeSession, UpstreamLeg,
};
use crate::domain::authorize::{Authorization, BASE_SCOPES};
use crate::domain::scope::Scopes;
use crate::server::AppState;
use crate::store::{Grant, UpstreamTokens};
use crate::upstream::id_token;
use crate::upstream::token::{self as upstream_token, TokenResponse};

pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    let params = Params::new(query.into_inner());
    let Ok(Some(session)) = params.one("state") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid response",
            "The identity provider's answer carries no state.",
        );
    };
    let csrf = state.cookies.bound_csrf(&req, session).unwrap_or_default();
    let (request, leg) = match state
        .sessions
        .send(TakeSession {
            state: session.to_owned(),
            csrf,
        })
        .await
        .unwrap_or(Err(SessionError::Stopped))
    {
        Ok(taken) => taken,
        Err(error) => {
            state.metrics.login("failed");
            return session_error_page(&error);
        }
    };
    // The session is over whatever happens next: its binding cookie goes.
    let mut cookies = vec![state.cookies.clear_binding(session)];
    match finish(&state, &params, &request, &leg).await {
        Ok(Finished::Code { code, subject }) => {
            state.metrics.login("completed");
            if leg.remember == Remember::Asked {
                let browser = state.cookies.browser(&req);
                let what = Approved {
                    client_id: &request.client_id,
                    scopes: &request.scopes,
                    resource: request.resource.as_deref(),
                };
                let now = state.clock.unix();
                cookies.push(state.cookies.remember(&browser.id, &subject, &what, now));
                cookies.push(browser.cookie);
            }
            let mut out = vec![("code", code.as_str())];
            if let Some(s) = request.state.as_deref() {
                out.push(("state", s));
            }
            login::to_client(&state, &request.redirect_uri, &out, cookies)
        }
        Ok(Finished::NotRemembered(client)) => {
            state.metrics.login("consent_remembered_other_user");
            let ticket = match start_session(&state, &request).await {
                Ok(ticket) => ticket,
                Err(page) => return page,
            };
            cookies.push(state.cookies.binding(&ticket.id, &ticket.csrf));
            show_consent(&state, &client, &request, &ticket, cookies)
        }
        Err(Refusal { error, description }) => {
            state.metrics.login(if error == "access_denied" {
                "upstream_error"
            } else {
                "failed"
            });
            error_to_client(&state, &request, error, &description, cookies)
        }
    }
}

/// How a login that reached the provider ends well.
enum Finished {
    /// The grant is stored: the client's code, and who logged in.
    Code { code: String, subject: String },
    /// The consent page was skipped for an approval remembered for another user:
    /// nothing is stored, the user must be asked.
    NotRemembered(Box<KnownClient>),
}

/// What the client is told when the login cannot be completed.
struct Refusal {
    error: &'static str,
    description: String,
}

impl Refusal {
    /// Our side or the provider failed: logged in full, `server_error` to the client.
    fn failed(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "login could not be completed");
        Self {
            error: "server_error",
            description: "the login could not be completed with the identity provider".to_owned(),
        }
    }
}

async fn finish(
    state: &AppState,
    params: &Params,
    request: &Authorization,
    leg: &UpstreamLeg,
) -> Result<Finished, Refusal> {
    let snapshot = state.discovery.current().await.map_err(|e| Refusal {
        error: "temporarily_unavailable",
        description: format!("the identity provider cannot be reached: {e}"),
    })?;
    // RFC 9207: a response naming another issuer is a mix-up attack.
    if let Ok(Some(iss)) = params.one("iss")
        && iss != snapshot.info.issuer
    {
        return Err(Refusal::failed(format!(
            "the callback's iss `{iss}` is not the provider's issuer"
        )));
    }
    if let Ok(Some(error)) = params.one("error") {
        let detail = params
            .one("error_description")
            .ok()
            .flatten()
            .unwrap_or(error);
        tracing::info!(error, detail, "the identity provider refused the login");
        return Err(Refusal {
            error: forwarded_error(error),
            description: format!("the identity provider refused the login: {detail}"),
        });
    }
    let code = params
        .one("code")
        .ok()
        .flatten()
        .ok_or_else(|| Refusal::failed("the provider's answer has neither code nor error"))?;
    let client = clients::find(state, &request.client_id)
        .await
        .map_err(Refusal::failed)?
        .ok_or_else(|| Refusal::failed("the client was removed during the login"))?;
    let credentials = client.upstream_credentials(&state.config);
    let token_endpoint = snapshot
        .info
        .token_endpoint
        .as_deref()
        .ok_or_else(|| Refusal::failed("the provider advertises no token_endpoint"))?;
    let callback = state.config.server.public_url.endpoint("/oauth/callback");
    let tokens = upstream_token::exchange_code(
        &state.upstream_http,
        token_endpoint,
        &credentials,
        code,
        &callback,
        &leg.verifier,
    )
    .await
    .map_err(Refusal::failed)?;
    let id_token = tokens
        .id_token
        .as_deref()
        .ok_or_else(|| Refusal::failed("the provider returned no ID token"))?;
    let claims = id_token::validate(
        &state.discovery,
        &state.config.upstream.issuer,
        &credentials.client_id,
        &leg.nonce,
        id_token,
        &state.clock,
        state.config.verify.leeway,
    )
    .await
    .map_err(Refusal::failed)?;
    if let Remember::For(digest) = &leg.remember
        && !state.cookies.is_subject(digest, &claims.subject)
    {
        tracing::info!("a remembered approval was given by another user: asking this one");
        return Ok(Finished::NotRemembered(Box::new(client)));
    }
    let now = state.clock.unix();
    let scopes = granted(&request.scopes, &tokens);
    let grant_id = random_id();
    state
        .store
        .put_grant(Grant {
            grant_id: grant_id.clone(),
            subject: claims.subject.clone(),
            client_id: request.client_id.clone(),
            scopes: scopes.clone(),
            resource: request.resource.clone(),
            upstream: UpstreamTokens {
                access_token: tokens.access_token.clone(),
                refresh_token: tokens.refresh_token.clone(),
                expires_at: tokens.expires_in.map(|s| now + s),
                scope: tokens.scope.clone(),
                obtained_at: Some(now),
            },
            created_at: now,
            revoked_at: None,
        })
        .await
        .map_err(Refusal::failed)?;
    if let Err(error) = state.store.touch_client(&request.client_id, now).await {
        tracing::warn!(%error, "could not record the client's use");
    }
    state
        .sessions
        .send(MintProxyCode {
            grant: CodeGrant {
                grant_id,
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                scopes,
                resource: request.resource.clone(),
                subject: claims.subject.clone(),
            },
        })
        .await
        .unwrap_or(Err(SessionError::Stopped))
        .map(|code| Finished::Code {
            code,
            subject: claims.subject,
        })
        .map_err(|e| match e {
            SessionError::Full => Refusal {
                error: "temporarily_unavailable",
                description: "too many logins in progress; retry shortly".to_owned(),
            },
            other => Refusal::failed(other),
        })
}

/// What the client may have: what it asked for, narrowed to what the provider
/// granted when the provider says (RFC 6749 §5.1: no `scope` means all of it). The
/// OpenID scopes are the broker's to give.
fn granted(requested: &Scopes, tokens: &TokenResponse) -> Scopes {
    match tokens.scope.as_deref().map(Scopes::parse) {
        Some(Ok(upstream)) => {
            let ours = Scopes::of(BASE_SCOPES.iter().copied());
            requested.intersection(&upstream.union(&ours))
        }
        _ => requested.clone(),
    }
}

/// Provider errors the client can act on are passed on; the rest mean the broker's
/// own client is misconfigured, which the user's client cannot fix.
fn forwarded_error(error: &str) -> &'static str {
    match error {
        "access_denied"
        | "login_required"
        | "consent_required"
        | "interaction_required"
        | "account_selection_required" => "access_denied",
        "temporarily_unavailable" => "temporarily_unavailable",
        "invalid_scope" => "invalid_scope",
        _ => "server_error",
    }
}

fn random_id() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
