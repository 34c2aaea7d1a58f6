//! The route table: one function used by `serve`, the demo and the tests alike.

use actix_cors::Cors;
use actix_web::HttpResponse;
use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};

use super::error::{self, ApiError};
use super::{
    addresses, authorize, callback, consent, health, introspect, jwks, metadata, metrics, register,
    resource_metadata, revoke, token, verify,
};
use crate::config::Config;

const AS_METADATA: &str = "/.well-known/oauth-authorization-server";
const OIDC_METADATA: &str = "/.well-known/openid-configuration";

/// Which routes an application serves: everything on one port, or the public and the
/// management halves when `server.management_listen` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// One port serves every route (no `server.management_listen`).
    Whole,
    /// The public port beside a management port: every route but the operational ones.
    Public,
    /// The management port: `/healthz`, `/readyz`, `/metrics` and `/admin/*` only.
    Management,
}

impl Surface {
    /// Whether the operational routes (`/healthz`, `/readyz`, `/metrics`, `/admin/*`)
    /// are served here.
    pub fn operational(self) -> bool {
        self != Self::Public
    }

    /// Whether the OAuth, verification, metadata and gateway routes are served here.
    pub fn public(self) -> bool {
        self != Self::Management
    }
}

/// Registers the routes of `surface` and the extractor configuration that turns bad
/// input into RFC 6749 errors. The issuer path decides where the metadata also lives:
/// for an issuer `https://host/auth`, RFC 8414 §3.1 puts it at
/// `/.well-known/oauth-authorization-server/auth`, OIDC at `/auth/.well-known/openid-configuration`.
pub fn configure(config: &Config, surface: Surface) -> impl FnOnce(&mut ServiceConfig) + use<> {
    let limit = config.server.max_body_bytes;
    let issuer_path = config.server.public_url.path().to_owned();
    let admin_api = config.admin.token.is_some();
    move |cfg: &mut ServiceConfig| {
        extractor_configs(cfg, limit);
        if surface.operational() {
            get(cfg, "/healthz", health::healthz);
            get(cfg, "/readyz", health::readyz);
            get(cfg, "/metrics", metrics::metrics);
            if admin_api {
                super::admin_routes::mount(cfg);
            }
        }
        if surface.public() {
            public(cfg, &issuer_path);
        }
    }
}

/// The routes clients, proxies and browsers reach: verification, OAuth, keys and
/// metadata.
fn public(cfg: &mut ServiceConfig, issuer_path: &str) {
    // The hot path. Proxies send the original method (nginx `auth_request`
    // does), so any goes. An exact path is matched by comparing strings, and every
    // request the router passes on its way to a later route (the gateway's, the
    // token endpoint's) compares one more; a pattern would run a regular expression
    // on each, twice (routing, and the metrics' route label). Envoy's ext_authz (HTTP)
    // appends the original path to the check URL: those are matched under the prefix.
    cfg.service(web::resource(verify::VERIFY_PATH).to(verify::verify));
    cfg.service(
        web::scope(verify::VERIFY_PATH).service(web::resource("/{tail:.*}").to(verify::verify)),
    );
    // The OAuth endpoints, behind their address list (judged before anything is
    // read). Browser-based clients (the MCP Inspector) register, redeem and
    // revoke cross-origin.
    cfg.service(
        web::scope("/oauth")
            .wrap(from_fn(addresses::oauth_guard))
            .configure(|cfg| {
                cross_origin_post(cfg, "/register", register::register);
                get(cfg, "/authorize", authorize::authorize);
                get(cfg, "/callback", callback::callback);
                post(cfg, "/consent", consent::consent);
                cross_origin_post(cfg, "/token", token::token);
                cross_origin_post(cfg, "/revoke", revoke::revoke);
                post(cfg, "/introspect", introspect::introspect);
            }),
    );
    cfg.service(
        web::resource("/jwks.json")
            .wrap(public_cors())
            .route(web::get().to(jwks::jwks))
            .default_service(web::to(method_not_allowed)),
    );
    // The bare document, and one per resource path under the prefix (as for
    // verification: no pattern on the way to later routes).
    cfg.service(
        web::resource(resource_metadata::PREFIX)
            .wrap(public_cors())
            .route(web::get().to(resource_metadata::metadata))
            .default_service(web::to(method_not_allowed)),
    );
    cfg.service(
        web::scope(resource_metadata::PREFIX).service(
            web::resource("/{path:.*}")
                .wrap(public_cors())
                .route(web::get().to(resource_metadata::metadata))
                .default_service(web::to(method_not_allowed)),
        ),
    );

    let mut metadata_paths = vec![AS_METADATA.to_owned(), OIDC_METADATA.to_owned()];
    if !issuer_path.is_empty() {
        metadata_paths.push(format!("{AS_METADATA}{issuer_path}"));
        metadata_paths.push(format!("{issuer_path}{OIDC_METADATA}"));
    }
    for path in metadata_paths {
        cfg.service(
            web::resource(path)
                .wrap(public_cors())
                .route(web::get().to(metadata::authorization_server))
                .default_service(web::to(method_not_allowed)),
        );
    }
}

/// Extractor configuration: body limits, and bad JSON, forms, queries and paths
/// turned into `invalid_request` instead of actix's plain-text errors.
pub fn extractor_configs(cfg: &mut ServiceConfig, limit: usize) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(limit)
            .error_handler(error::json_error),
    )
    .app_data(
        web::FormConfig::default()
            .limit(limit)
            .error_handler(error::form_error),
    )
    .app_data(super::form::FormLimit(limit))
    .app_data(web::QueryConfig::default().error_handler(error::query_error))
    .app_data(web::PathConfig::default().error_handler(error::path_error))
    .app_data(web::PayloadConfig::new(limit));
}

/// A GET-only resource whose other methods get the JSON 405.
fn get<F, Args>(cfg: &mut ServiceConfig, path: &str, handler: F)
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    cfg.service(
        web::resource(path)
            .route(web::get().to(handler))
            .default_service(web::to(method_not_allowed)),
    );
}

/// A POST-only resource whose other methods get the JSON 405.
fn post<F, Args>(cfg: &mut ServiceConfig, path: &str, handler: F)
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    cfg.service(
        web::resource(path)
            .route(web::post().to(handler))
            .default_service(web::to(method_not_allowed)),
    );
}

/// A POST-only resource browser-based clients call from other origins; credentials
/// are in the body or the Authorization header, never in cookies.
fn cross_origin_post<F, Args>(cfg: &mut ServiceConfig, path: &str, handler: F)
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    cfg.service(
        web::resource(path)
            .wrap(
                Cors::default()
                    .allow_any_origin()
                    .allowed_methods(["POST"])
                    .allow_any_header()
                    .max_age(86_400),
            )
            .route(web::post().to(handler))
            .default_service(web::to(method_not_allowed)),
    );
}

/// Discovery documents are read by browser-based clients (the MCP Inspector) from
/// other origins, with MCP headers that trigger a preflight.
fn public_cors() -> Cors {
    Cors::default()
        .allow_any_origin()
        .allowed_methods(["GET"])
        .allow_any_header()
        .max_age(86_400)
}

/// The App's default service: unknown paths.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

pub async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}
