//! The actix-web application over the built parts.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, web};

use std::sync::Arc;

use super::Broker;
pub use crate::http::routes::Surface;
use crate::http::{middleware, routes};

/// The application serving `surface`: each handler's parts as its own `web::Data`, the
/// routes and the middleware. Middleware wraps every route, including any a caller
/// registers on the returned `App`.
pub fn app(
    state: Arc<Broker>,
    surface: Surface,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::from(state.clients.clone()))
        .app_data(web::Data::from(state.grant_flow.clone()))
        .app_data(web::Data::from(state.access.clone()))
        .app_data(web::Data::from(state.exchange.clone()))
        .app_data(web::Data::from(state.login.clone()))
        .app_data(web::Data::from(state.cookies.clone()))
        .app_data(web::Data::from(state.registrar.clone()))
        .app_data(web::Data::from(state.admin.clone()))
        .app_data(web::Data::new(state.config.forward_auth.clone()))
        // Address lists and the operator's rate-limit budgets.
        .app_data(web::Data::from(state.addresses.clone()))
        .app_data(web::Data::from(state.budgets.clone()))
        // The operational endpoints: readiness, metadata, keys, metrics.
        .app_data(web::Data::from(state.readiness.clone()))
        .app_data(web::Data::new(state.discovery.clone()))
        .app_data(web::Data::from(state.metadata.clone()))
        .app_data(web::Data::from(state.resource_documents.clone()))
        .app_data(web::Data::from(state.signing.clone()))
        .app_data(web::Data::new(state.clock.clone()))
        .app_data(web::Data::new(state.metrics.clone()))
        .app_data(web::Data::new(state.upstream_calls.propagation()))
        .configure(routes::configure(&state.config, surface))
        .configure(gateways(&state, surface))
        .default_service(web::to(routes::not_found))
        .wrap(from_fn(middleware::limit_body))
        .wrap(
            DefaultHeaders::new()
                .add(("Cache-Control", "no-store"))
                .add(("Pragma", "no-cache"))
                .add(("X-Content-Type-Options", "nosniff")),
        )
        .wrap(from_fn(middleware::observe))
}

/// The gateway routes, on a surface that serves the public routes.
fn gateways(state: &Broker, surface: Surface) -> impl FnOnce(&mut web::ServiceConfig) + use<> {
    let routes = surface.public().then(|| {
        crate::gateway::routes(
            &state.config.gateways,
            &state.config.forward_auth.identity,
            state.cookies.derived_key(crate::gateway::SESSION_KEY_LABEL),
            state.config.server.max_body_bytes,
            &state.upstream_calls,
        )
    });
    move |cfg: &mut web::ServiceConfig| {
        if let Some(routes) = routes {
            routes(cfg);
        }
    }
}
