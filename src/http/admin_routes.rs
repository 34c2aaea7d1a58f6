//! The admin API's route table: one list of paths and their methods, mounted (only
//! when `admin.token` is set) and read by the test that holds it to the OpenAPI
//! document (`src/http/admin_openapi.json`), so a route cannot be added without it.

use actix_web::http::Method;
use actix_web::web::{self, ServiceConfig};
use actix_web::{FromRequest, Handler, Responder, Route};

use super::{
    admin, admin_clients, admin_grants, admin_limits, admin_openapi, admin_sessions, routes,
};

/// One path and the routes on it.
pub struct AdminResource {
    pub path: &'static str,
    routes: Vec<(Method, Route)>,
}

impl AdminResource {
    fn new(path: &'static str) -> Self {
        Self {
            path,
            routes: Vec::new(),
        }
    }

    fn on<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.routes
            .push((method.clone(), web::method(method).to(handler)));
        self
    }

    pub fn methods(&self) -> impl Iterator<Item = &Method> {
        self.routes.iter().map(|(method, _)| method)
    }
}

/// Every admin route.
pub fn resources() -> Vec<AdminResource> {
    vec![
        AdminResource::new("/admin/invalidate").on(Method::POST, admin::invalidate),
        AdminResource::new("/admin/openapi.json").on(Method::GET, admin_openapi::document),
        AdminResource::new("/admin/clients").on(Method::GET, admin_clients::list),
        AdminResource::new("/admin/clients/{client_id}")
            .on(Method::GET, admin_clients::show)
            .on(Method::DELETE, admin_clients::delete),
        AdminResource::new("/admin/grants")
            .on(Method::GET, admin_grants::list)
            .on(Method::DELETE, admin_grants::revoke_matching),
        AdminResource::new("/admin/grants/{grant_id}")
            .on(Method::GET, admin_grants::show)
            .on(Method::DELETE, admin_grants::revoke),
        AdminResource::new("/admin/sessions").on(Method::GET, admin_sessions::list),
        AdminResource::new("/admin/rate-limits")
            .on(Method::GET, admin_limits::show)
            .on(Method::DELETE, admin_limits::reset),
        AdminResource::new("/admin/rate-limits/reset").on(Method::POST, admin_limits::reset),
    ]
}

/// Where every admin path starts.
const PREFIX: &str = "/admin";

/// Mounts every admin route; other methods on their paths get the JSON 405. They sit
/// in one scope, so a request elsewhere (forward-auth, the gateway) passes them all
/// with one prefix comparison instead of trying each path's pattern.
pub fn mount(cfg: &mut ServiceConfig) {
    let mut scope = web::scope(PREFIX);
    for resource in resources() {
        let path = resource.path.strip_prefix(PREFIX).unwrap_or(resource.path);
        let mut mounted = web::resource(path);
        for (_, route) in resource.routes {
            mounted = mounted.route(route);
        }
        scope = scope.service(mounted.default_service(web::to(routes::method_not_allowed)));
    }
    cfg.service(scope);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_openapi_document_describes_exactly_the_mounted_routes() {
        let mounted: BTreeSet<(String, String)> = resources()
            .iter()
            .flat_map(|r| {
                r.methods()
                    .map(|m| (r.path.to_owned(), m.as_str().to_lowercase()))
            })
            .collect();
        let documented = admin_openapi::operations(admin_openapi::DOCUMENT).unwrap();
        assert_eq!(mounted, documented);
        // Mounted under one scope: every path must start with it.
        for resource in resources() {
            assert!(
                resource.path.starts_with(&format!("{PREFIX}/")),
                "{}",
                resource.path
            );
        }
    }
}
