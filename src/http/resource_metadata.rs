//! Protected-resource metadata (RFC 9728) for each configured resource, at
//! `/.well-known/oauth-protected-resource{path}` of the resource's host, and at the
//! root form too (clients fall back to it).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::error::{ApiError, ErrorCode};
use crate::config::{Config, ResourceConfig};
use crate::domain::resource::{Authority, UnknownHost, select};
use crate::flows::addresses::{Addresses, Origin};

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

/// A resource's authority and path, and its document.
type Document = (Authority, String, serde_json::Value);

fn parts(document: &Document) -> (&Authority, &str) {
    (&document.0, document.1.as_str())
}

/// Every resource's document, rendered once from the configuration, found for a
/// request as `flows::access` finds the resource (`domain::resource::select`): by the
/// request's host (`Host`, or `X-Forwarded-Host` from a trusted proxy) and the path
/// after the prefix, which must be the resource's path exactly. The root form answers
/// for the host's resource with an empty path, else the host's first resource, else
/// the first of all (clients fall back to it).
pub struct ResourceDocuments {
    documents: Vec<Document>,
}

impl ResourceDocuments {
    pub fn from_config(config: &Config) -> Self {
        let issuer = config.server.public_url.as_str();
        let documents = config
            .resources
            .iter()
            .map(|r| (r.authority.clone(), r.path.clone(), document(r, issuer)))
            .collect();
        Self { documents }
    }

    /// The document for `suffix` (`""`: the root form) asked of `host`.
    fn find(
        &self,
        host: Option<&str>,
        suffix: &str,
    ) -> Result<Option<&serde_json::Value>, UnknownHost> {
        let found = select(&self.documents, parts, host, suffix, |base, path| {
            base == path
        })?;
        if found.is_some() || !suffix.is_empty() {
            return Ok(found.map(|d| &d.2));
        }
        let of_host = host.and_then(|host| self.documents.iter().find(|d| d.0.matches(host)));
        Ok(of_host.or_else(|| self.documents.first()).map(|d| &d.2))
    }
}

pub async fn metadata(
    documents: web::Data<ResourceDocuments>,
    addresses: web::Data<Addresses>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let suffix = req
        .path()
        .strip_prefix(PREFIX)
        .unwrap_or("")
        .trim_end_matches('/');
    let get = |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
    let origin = Origin {
        peer: req.peer_addr().map(|a| a.ip()),
        host: get(header::HOST),
        forwarded_host: get(header::HeaderName::from_static("x-forwarded-host")),
        ..Origin::default()
    };
    let document = documents
        .find(addresses.host(origin), suffix)
        .map_err(|UnknownHost| {
            ApiError::oauth(
                ErrorCode::InvalidRequest,
                "the request's host names none of the resources on this path",
            )
        })?
        .ok_or(ApiError::NotFound)?;
    // The document depends on the host: caches must keep one per host.
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .insert_header((header::VARY, "Host, X-Forwarded-Host"))
        .json(document))
}
