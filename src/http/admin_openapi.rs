//! `GET /admin/openapi.json`: the admin API's OpenAPI 3.1 document, kept in the
//! repository (`src/http/admin_openapi.json`) and compiled in. Behind the admin token like
//! every `/admin` path: it holds no secret, but an API that is not announced is not
//! probed by its description (tools load it with the same bearer header, or from the
//! file).

use std::collections::BTreeSet;

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;

use super::admin_auth::Authorized;

pub const DOCUMENT: &str = include_str!("admin_openapi.json");

pub async fn document(_: Authorized) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(DOCUMENT)
}

/// The `(path, method)` pairs a document describes (methods in lower case).
pub fn operations(document: &str) -> Result<BTreeSet<(String, String)>, String> {
    let value: serde_json::Value =
        serde_json::from_str(document).map_err(|e| format!("not JSON: {e}"))?;
    let paths = value
        .get("paths")
        .and_then(|p| p.as_object())
        .ok_or("no `paths` object")?;
    const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];
    Ok(paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (path.clone(), (*m).to_owned()))
        })
        .collect())
}
