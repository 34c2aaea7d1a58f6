//! The one HTTP client for upstream calls: rustls, bounded time, no redirects (a
//! provider that redirects its token endpoint is misconfigured or hijacked), bounded
//! response size.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde::de::DeserializeOwned;

use super::UpstreamError;
use crate::telemetry::upstream::{Operation, UpstreamCalls};

/// Responses larger than this are refused: discovery documents and JWKS are small.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// An idle pooled connection is given up after this, rather than reqwest's 90 s:
/// servers close idle keep-alive connections after as little as 5 s (actix-web's and
/// Node's default, oidc-provider's among them), and a request sent on one the moment
/// the server closes it fails ("connection closed before message completed"), a 503
/// for the client out of nothing (found by the soak, benches/soak.sh).
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// A shared, cheaply cloned client. Every call goes through [`UpstreamCalls`] (its
/// span, `traceparent` and latency histogram), named by the [`Operation`] it is for.
#[derive(Clone)]
pub struct UpstreamHttp {
    client: reqwest::Client,
    calls: UpstreamCalls,
}

impl std::fmt::Debug for UpstreamHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamHttp").finish_non_exhaustive()
    }
}

impl UpstreamHttp {
    pub fn new(timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("token-broker/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            client,
            calls: UpstreamCalls::default(),
        })
    }

    /// Calls recorded in `calls`' metrics, traced when it propagates.
    pub fn with_calls(mut self, calls: UpstreamCalls) -> Self {
        self.calls = calls;
        self
    }

    /// GETs `url` and parses the JSON body.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        operation: Operation,
        url: &str,
    ) -> Result<T, UpstreamError> {
        let request = self.client.get(url).header(ACCEPT, "application/json");
        self.execute(operation, url, request).await
    }

    /// POSTs a form, authenticating with HTTP Basic when `basic` is given, and parses
    /// the JSON answer. RFC 6749 error bodies become [`UpstreamError::OAuth`].
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        operation: Operation,
        url: &str,
        basic: Option<&str>,
        form: &[(&str, &str)],
    ) -> Result<T, UpstreamError> {
        let mut request = self
            .client
            .post(url)
            .header(ACCEPT, "application/json")
            .form(form);
        if let Some(header) = basic {
            request = request.header(AUTHORIZATION, header);
        }
        self.execute(operation, url, request).await
    }

    /// POSTs a form whose success has no body to read (RFC 7009 revocation): any 2xx
    /// is success.
    pub async fn post_form_unread(
        &self,
        operation: Operation,
        url: &str,
        basic: Option<&str>,
        form: &[(&str, &str)],
    ) -> Result<(), UpstreamError> {
        let mut request = self.client.post(url).form(form);
        if let Some(header) = basic {
            request = request.header(AUTHORIZATION, header);
        }
        let response = self.send(operation, url, request).await?;
        read_body(url, response).await.map(|_| ())
    }

    /// POSTs a JSON body (dynamic client registration) and parses the JSON answer.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        operation: Operation,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<T, UpstreamError> {
        let request = self
            .client
            .post(url)
            .header(ACCEPT, "application/json")
            .json(body);
        self.execute(operation, url, request).await
    }

    /// DELETEs `url` with a bearer token (RFC 7592 §2.3); any 2xx or 404 is success.
    /// GETs `url` with a bearer token and answers only the status (RFC 7592 §2.1
    /// read: whether the provider still knows a client).
    pub async fn status_of(
        &self,
        operation: Operation,
        url: &str,
        bearer: &str,
    ) -> Result<u16, UpstreamError> {
        let request = self.bearer_get(url, bearer);
        let response = self.send(operation, url, request).await?;
        Ok(response.status().as_u16())
    }

    pub async fn delete(
        &self,
        operation: Operation,
        url: &str,
        bearer: &str,
    ) -> Result<(), UpstreamError> {
        let request = self.client.delete(url).bearer_auth(bearer);
        let response = self.send(operation, url, request).await?;
        if response.status().is_success() || response.status().as_u16() == 404 {
            return Ok(());
        }
        read_body(url, response).await.map(|_| ())
    }

    /// GETs `url` with a bearer token and answers its `Content-Type` and body (at most
    /// `limit` bytes) when it is a success (OIDC userinfo).
    pub async fn get_bearer(
        &self,
        operation: Operation,
        url: &str,
        bearer: &str,
        limit: usize,
    ) -> Result<(String, Vec<u8>), UpstreamError> {
        let request = self.bearer_get(url, bearer);
        let response = self.send(operation, url, request).await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = read_at_most(url, response, limit).await?;
        Ok((content_type, body))
    }

    /// A GET of `url` with a bearer token, asking for JSON.
    fn bearer_get(&self, url: &str, bearer: &str) -> reqwest::RequestBuilder {
        self.client
            .get(url)
            .bearer_auth(bearer)
            .header(ACCEPT, "application/json")
    }

    async fn execute<T: DeserializeOwned>(
        &self,
        operation: Operation,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, UpstreamError> {
        let response = self.send(operation, url, request).await?;
        let body = read_body(url, response).await?;
        serde_json::from_slice(&body).map_err(|e| UpstreamError::Invalid {
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }
}

impl UpstreamHttp {
    async fn send(
        &self,
        operation: Operation,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, UpstreamError> {
        self.calls
            .send(operation, request)
            .await
            .map_err(|e| unreachable(url, &e))
    }
}

fn unreachable(url: &str, error: &reqwest::Error) -> UpstreamError {
    // reqwest's Display is terse; the source chain says what actually failed.
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        reason.push_str(": ");
        reason.push_str(&inner.to_string());
        source = inner.source();
    }
    UpstreamError::Unreachable {
        url: url.to_owned(),
        reason,
    }
}

/// Reads at most `MAX_RESPONSE_BYTES`; maps error statuses, keeping RFC 6749 errors.
async fn read_body(url: &str, response: reqwest::Response) -> Result<Vec<u8>, UpstreamError> {
    read_at_most(url, response, MAX_RESPONSE_BYTES).await
}

/// Reads at most `limit` bytes; maps error statuses, keeping RFC 6749 errors.
async fn read_at_most(
    url: &str,
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, UpstreamError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(url, &e))? {
        if body.len() + chunk.len() > limit {
            return Err(UpstreamError::Invalid {
                url: url.to_owned(),
                reason: format!("response larger than {limit} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_success() {
        return Ok(body);
    }
    #[derive(serde::Deserialize)]
    struct OAuthError {
        error: String,
        error_description: Option<String>,
    }
    match serde_json::from_slice::<OAuthError>(&body) {
        // RFC 6749 §5.2 errors come with 400 or 401 (403 from some providers); a JSON
        // body on 404 or 5xx says nothing about our request.
        Ok(e) if matches!(status.as_u16(), 400 | 401 | 403) => Err(UpstreamError::OAuth {
            status: status.as_u16(),
            error: e.error,
            description: e.error_description,
        }),
        _ => Err(UpstreamError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
            retry_after,
        }),
    }
}

#[cfg(test)]
mod pool_tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Answers `{}` to every request on every connection, counting connections.
    fn server() -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/doc", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut chunk) {
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            buffer.drain(..end + 4);
                            let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                            if stream.write_all(answer.as_bytes()).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    #[actix_web::test]
    async fn a_connection_idle_past_the_pool_timeout_is_not_reused() {
        let (url, accepted) = server();
        let http = UpstreamHttp::new(Duration::from_secs(5)).unwrap();
        let _: serde_json::Value = http.get_json(Operation::Discovery, &url).await.unwrap();
        let _: serde_json::Value = http.get_json(Operation::Discovery, &url).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "kept alive while busy");
        // The pool's own idle clock (hyper's): no test clock reaches it.
        tokio::time::sleep(POOL_IDLE_TIMEOUT + Duration::from_millis(500)).await;
        let _: serde_json::Value = http.get_json(Operation::Discovery, &url).await.unwrap();
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "a connection idle past POOL_IDLE_TIMEOUT was reused"
        );
    }
}
