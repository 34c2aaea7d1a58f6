//! Dynamic client registration (RFC 7591) and its management protocol's read and
//! delete (RFC 7592), with registration access tokens.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};
use url::Url;

use super::config::TOKEN_EXCHANGE;
use super::error::{ErrorCode, IdpError, err};
use super::idp::{Client, Idp, random_token};
use crate::config::constant_time_eq;
use crate::domain::scope::Scopes;

const GRANTS: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    TOKEN_EXCHANGE,
];
const AUTH_METHODS: &[&str] = &["none", "client_secret_basic", "client_secret_post"];

pub async fn register(
    idp: web::Data<Idp>,
    body: web::Json<Value>,
) -> Result<HttpResponse, IdpError> {
    if !idp.config.dynamic_registration {
        return Err(IdpError::refused(StatusCode::NOT_FOUND, "no such endpoint"));
    }
    let Value::Object(mut metadata) = body.into_inner() else {
        return Err(err(
            ErrorCode::InvalidClientMetadata,
            "the body must be a JSON object",
        ));
    };
    let redirect_uris = string_list(&metadata, "redirect_uris")?.unwrap_or_default();
    for uri in &redirect_uris {
        if !Url::parse(uri).is_ok_and(|u| u.fragment().is_none()) {
            return Err(err(
                ErrorCode::InvalidRedirectUri,
                format!("`{uri}` is not an absolute URI without fragment"),
            ));
        }
    }
    let grant_types = string_list(&metadata, "grant_types")?
        .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    if let Some(bad) = grant_types.iter().find(|g| !GRANTS.contains(&g.as_str())) {
        return Err(err(
            ErrorCode::InvalidClientMetadata,
            format!("unsupported grant type {bad}"),
        ));
    }
    if grant_types.iter().any(|g| g == "authorization_code") && redirect_uris.is_empty() {
        return Err(err(
            ErrorCode::InvalidRedirectUri,
            "redirect_uris is required for authorization_code",
        ));
    }
    let response_types =
        string_list(&metadata, "response_types")?.unwrap_or_else(|| vec!["code".to_owned()]);
    if response_types.iter().any(|r| r != "code") {
        return Err(err(
            ErrorCode::InvalidClientMetadata,
            "only the code response type is supported",
        ));
    }
    let method = match metadata.get("token_endpoint_auth_method") {
        None => "client_secret_basic".to_owned(),
        Some(Value::String(m)) if AUTH_METHODS.contains(&m.as_str()) => m.clone(),
        Some(other) => {
            return Err(err(
                ErrorCode::InvalidClientMetadata,
                format!("unsupported token_endpoint_auth_method {other}"),
            ));
        }
    };
    let scopes = match metadata.get("scope") {
        None => None,
        Some(Value::String(text)) => {
            let scopes =
                Scopes::parse(text).map_err(|e| err(ErrorCode::InvalidClientMetadata, e))?;
            let unknown = scopes.missing_from(&idp.supported());
            if !unknown.is_empty() {
                return Err(err(
                    ErrorCode::InvalidClientMetadata,
                    format!("unknown scope: {unknown}"),
                ));
            }
            Some(scopes)
        }
        Some(_) => {
            return Err(err(
                ErrorCode::InvalidClientMetadata,
                "scope must be a string",
            ));
        }
    };

    let client_id = uuid::Uuid::new_v4().to_string();
    let secret = (method != "none").then(random_token);
    let registration_token = random_token();
    metadata.insert("client_id".into(), json!(client_id));
    metadata.insert("client_id_issued_at".into(), json!(idp.clock.unix()));
    metadata.insert("redirect_uris".into(), json!(redirect_uris));
    metadata.insert("grant_types".into(), json!(grant_types));
    metadata.insert("response_types".into(), json!(response_types));
    metadata.insert("token_endpoint_auth_method".into(), json!(method));
    if let Some(secret) = &secret {
        metadata.insert("client_secret".into(), json!(secret));
        let expires_at = idp
            .config
            .registered_secret_ttl
            .map_or(0, |ttl| idp.clock.unix() + ttl.as_secs());
        metadata.insert("client_secret_expires_at".into(), json!(expires_at));
    }
    metadata.insert(
        "registration_client_uri".into(),
        json!(idp.endpoint(&format!("/register/{client_id}"))),
    );
    let response = Value::Object(metadata);
    let mut stored_metadata = response.clone();
    if let Value::Object(map) = &mut stored_metadata {
        map.remove("client_secret");
    }
    let client = Client {
        client_id: client_id.clone(),
        secret,
        redirect_uris,
        grant_types,
        scopes,
        registration_token: Some(registration_token.clone()),
        metadata: Some(stored_metadata),
    };
    idp.store()?.clients.insert(client_id, client);
    let mut body = response;
    if let Value::Object(map) = &mut body {
        map.insert(
            "registration_access_token".into(),
            json!(registration_token),
        );
    }
    Ok(HttpResponse::Created().json(body))
}

/// RFC 7592 §2.1: read a registration with its registration access token.
pub async fn read(
    idp: web::Data<Idp>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, IdpError> {
    let client = authorized(&idp, &req, &path)?;
    let mut body = client.metadata.unwrap_or(Value::Object(Map::new()));
    // RFC 7592 §3: the client information response carries the access token too.
    if let (Value::Object(map), Some(token)) = (&mut body, client.registration_token) {
        map.insert("registration_access_token".into(), json!(token));
    }
    Ok(HttpResponse::Ok().json(body))
}

/// RFC 7592 §2.3: delete a registration; its refresh tokens go with it.
pub async fn delete(
    idp: web::Data<Idp>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, IdpError> {
    authorized(&idp, &req, &path)?;
    let mut store = idp.store()?;
    store.clients.remove(path.as_str());
    store.refresh.retain(|_, r| r.client_id != *path);
    Ok(HttpResponse::NoContent().finish())
}

fn authorized(idp: &Idp, req: &HttpRequest, client_id: &str) -> Result<Client, IdpError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| IdpError::MissingToken("registration access token required".to_owned()))?;
    let client = idp.store()?.clients.get(client_id).cloned();
    match client {
        Some(client)
            if client
                .registration_token
                .as_deref()
                .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes())) =>
        {
            Ok(client)
        }
        // Unknown client and wrong token look the same (RFC 7592 §2).
        _ => Err(IdpError::InvalidToken(
            "invalid registration access token".to_owned(),
        )),
    }
}

fn string_list(metadata: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, IdpError> {
    match metadata.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| {
                err(
                    ErrorCode::InvalidClientMetadata,
                    format!("{key} must be an array of strings"),
                )
            }),
        Some(_) => Err(err(
            ErrorCode::InvalidClientMetadata,
            format!("{key} must be an array of strings"),
        )),
    }
}
