//! The provider's userinfo endpoint (OIDC Core §5.3), asked for the user's claims
//! when `upstream.claims.userinfo = true`: a GET with the provider's access token,
//! answered by a JSON object of at most [`MAX_USERINFO_BYTES`] whose `sub` must be
//! the ID token's subject (§5.3.4: otherwise none of it may be used). A signed or
//! encrypted answer (`application/jwt`) is refused: the broker does not verify one.

use serde_json::{Map, Value};

use super::UpstreamError;
use super::discovery::ProviderInfo;
use super::http::UpstreamHttp;
use crate::domain::identity::{ClaimNames, Identity};
use crate::telemetry::upstream::Operation;

/// The largest userinfo answer read: a user's claims, groups included, fit well
/// within it.
pub const MAX_USERINFO_BYTES: usize = 64 * 1024;

/// `from_id_token` with what the userinfo endpoint says over it, when `names` asks for
/// userinfo (else as is). A provider without a `userinfo_endpoint` is an error
/// (`upstream.claims.userinfo = true` cannot be honoured), never a silent skip.
pub async fn identity(
    http: &UpstreamHttp,
    provider: &ProviderInfo,
    names: &ClaimNames,
    access_token: &str,
    subject: &str,
    from_id_token: Identity,
) -> Result<Identity, UpstreamError> {
    if !names.userinfo {
        return Ok(from_id_token);
    }
    let Some(endpoint) = provider.userinfo_endpoint.as_deref() else {
        return Err(UpstreamError::Invalid {
            url: provider.issuer.clone(),
            reason:
                "upstream.claims.userinfo = true, but the provider advertises no userinfo_endpoint"
                    .to_owned(),
        });
    };
    let stated = claims(http, endpoint, access_token, subject).await?;
    Ok(from_id_token.with_userinfo(names.identity(&stated)))
}

/// The claims the userinfo endpoint states for `subject`, asked with `access_token`.
pub async fn claims(
    http: &UpstreamHttp,
    endpoint: &str,
    access_token: &str,
    subject: &str,
) -> Result<Map<String, Value>, UpstreamError> {
    let (content_type, body) = http
        .get_bearer(
            Operation::Userinfo,
            endpoint,
            access_token,
            MAX_USERINFO_BYTES,
        )
        .await?;
    read(endpoint, &content_type, &body, subject)
}

/// The answer's claims, if it is a JSON object about `subject`.
fn read(
    endpoint: &str,
    content_type: &str,
    body: &[u8],
    subject: &str,
) -> Result<Map<String, Value>, UpstreamError> {
    let invalid = |reason: &str| UpstreamError::Invalid {
        url: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "application/jwt" {
        return Err(invalid(
            "a signed userinfo answer (application/jwt) is not supported; configure the provider to answer JSON",
        ));
    }
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("the userinfo answer is not a JSON object"));
    };
    match claims.get("sub").and_then(Value::as_str) {
        Some(sub) if sub == subject => Ok(claims),
        Some(_) => Err(invalid(
            "the userinfo answer is about another subject than the ID token (OIDC Core §5.3.4)",
        )),
        None => Err(invalid("the userinfo answer has no sub")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(content_type: &str, body: &str) -> Result<Map<String, Value>, UpstreamError> {
        read(
            "https://idp/userinfo",
            content_type,
            body.as_bytes(),
            "alice",
        )
    }

    #[test]
    fn only_a_json_object_about_the_same_subject_is_taken() {
        let ok = answer(
            "application/json; charset=utf-8",
            r#"{"sub":"alice","groups":["g"]}"#,
        );
        assert_eq!(
            ok.ok().and_then(|c| c.get("groups").cloned()),
            Some(serde_json::json!(["g"]))
        );
        for (content_type, body) in [
            ("application/json", r#"{"sub":"mallory"}"#),
            ("application/json", r#"{"groups":["g"]}"#),
            ("application/json", r#"["sub","alice"]"#),
            ("application/json", "not json"),
            ("application/jwt", "eyJ.eyJ.sig"),
        ] {
            let refused = answer(content_type, body);
            assert!(
                matches!(&refused, Err(e) if !e.is_transient()),
                "{content_type} {body}: {refused:?}"
            );
        }
    }
}
