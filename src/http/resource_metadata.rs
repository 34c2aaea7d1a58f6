//! Protected-resource metadata (RFC 9728) for each configured resource, at
//! `/.well-known/oauth-protected-resource{path}` and, for the first resource, at the
//! root form too (clients fall back to it).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::error::ApiError;
use crate::config::ResourceConfig;
use crate::server::AppState;

pub const PREFIX: &str = "/.well-known/oauth-protected-resource";

pub fn document(resource: &ResourceConfig, issuer: &str) -> serde_json::Value {
    let mut doc = json!({
        "resource": resource.uri,
        // Character for character the issuer of the broker's own metadata.
        "authorization_servers": [issuer],
        "scopes_supported": resource.scopes_supported,
        "bearer_methods_supported": ["header"],
    });
    if let Some(name) = &resource.name {
        doc["resource_name"] = json!(name);
    }
    doc
}

pub async fn metadata(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let suffix = req
        .path()
        .strip_prefix(PREFIX)
        .unwrap_or("")
        .trim_end_matches('/');
    let resources = &state.config.resources;
    let resource = if suffix.is_empty() {
        resources
            .iter()
            .find(|r| r.path.is_empty())
            .or_else(|| resources.first())
    } else {
        resources.iter().find(|r| r.path == suffix)
    }
    .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(document(resource, state.config.server.public_url.as_str())))
}
