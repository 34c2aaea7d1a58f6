//! Protected-resource metadata (RFC 9728) for each configured resource, at
//! `/.well-known/oauth-protected-resource{path}` and, for the first resource, at the
//! root form too (clients fall back to it).

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::error::ApiError;
use crate::config::{Config, ResourceConfig};

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

/// Every resource's document, rendered once from the configuration: the first
/// resource with an empty path (else the first of all) answers the root form too.
pub struct ResourceDocuments {
    root: Option<serde_json::Value>,
    by_path: HashMap<String, serde_json::Value>,
}

impl ResourceDocuments {
    pub fn from_config(config: &Config) -> Self {
        let issuer = config.server.public_url.as_str();
        let resources = &config.resources;
        let root = resources
            .iter()
            .find(|r| r.path.is_empty())
            .or_else(|| resources.first())
            .map(|r| document(r, issuer));
        let mut by_path = HashMap::new();
        for resource in resources.iter().filter(|r| !r.path.is_empty()) {
            // The first resource on a path answers for it, as the lookup always did.
            by_path
                .entry(resource.path.clone())
                .or_insert_with(|| document(resource, issuer));
        }
        Self { root, by_path }
    }
}

pub async fn metadata(
    documents: web::Data<ResourceDocuments>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let suffix = req
        .path()
        .strip_prefix(PREFIX)
        .unwrap_or("")
        .trim_end_matches('/');
    let document = if suffix.is_empty() {
        documents.root.as_ref()
    } else {
        documents.by_path.get(suffix)
    }
    .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(document))
}
