//! `[telemetry.otlp]`: OpenTelemetry traces sent over OTLP/HTTP to a collector. Off
//! unless the section names an endpoint; then every request, upstream call and gateway
//! hop is a span, and the W3C `traceparent` a caller sends becomes their parent.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use url::Url;

use super::sections::{Checker, optional_duration};
use super::{Environment, Problem, Secret};

/// The path OTLP/HTTP receivers take traces on (OTLP specification, "OTLP/HTTP").
pub const TRACES_PATH: &str = "/v1/traces";
const DEFAULT_SERVICE_NAME: &str = "token-broker";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `[telemetry]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    pub otlp: Option<RawOtlp>,
}

/// `[telemetry.otlp]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawOtlp {
    pub endpoint: Option<String>,
    pub protocol: Option<String>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub sample_ratio: Option<f64>,
    pub service_name: Option<String>,
    pub timeout: Option<String>,
    /// Header name → secret reference (inline, `env:NAME`, `file:PATH`).
    pub headers: Option<BTreeMap<String, String>>,
}

/// `[telemetry]`
#[derive(Debug, Clone, Default)]
pub struct TelemetryConfig {
    /// `[telemetry.otlp]`: where traces go; `None` (the default) traces nothing and
    /// sends no `traceparent` of the broker's own.
    pub otlp: Option<OtlpConfig>,
}

/// `[telemetry.otlp]`
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// `endpoint`: the collector's OTLP/HTTP base URL (`http://127.0.0.1:4318`); spans
    /// are posted to it with `/v1/traces` appended, unless its path already ends so.
    pub traces_url: Url,
    /// `protocol`: `http/protobuf` (default) or `http/json`.
    pub protocol: OtlpProtocol,
    /// `sample_ratio`: the share of new traces recorded, 0 to 1 (default 1). A caller's
    /// sampled flag decides for the traces it starts (parent-based sampling).
    pub sample_ratio: f64,
    /// `service_name`: the resource's `service.name` (default `token-broker`).
    pub service_name: String,
    /// `timeout`: the bound on one export request (default 10 s).
    pub timeout: Duration,
    /// `[telemetry.otlp.headers]`: sent with every export (a collector's API key),
    /// each a secret reference.
    pub headers: Vec<(String, Secret)>,
}

/// How spans are encoded on the wire (OTLP/HTTP; gRPC is not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Protobuf,
    Json,
}

pub fn telemetry(
    raw: RawTelemetry,
    env: &Environment,
    problems: &mut Vec<Problem>,
) -> Option<TelemetryConfig> {
    let Some(raw) = raw.otlp else {
        return Some(TelemetryConfig::default());
    };
    let mut c = Checker::new("telemetry.otlp", problems);
    let traces_url = match raw.endpoint {
        Some(endpoint) => c.parse("endpoint", Some(endpoint), |e| traces_url(&e)),
        None => {
            c.report("endpoint", "missing (required to send traces)");
            None
        }
    };
    let protocol = match raw.protocol.as_deref().map(str::trim) {
        None | Some("http/protobuf") => Some(OtlpProtocol::Protobuf),
        Some("http/json") => Some(OtlpProtocol::Json),
        Some(other) => {
            c.report(
                "protocol",
                format!("`{other}` is not offered: use \"http/protobuf\" or \"http/json\""),
            );
            None
        }
    };
    let sample_ratio = match raw.sample_ratio {
        None => Some(1.0),
        Some(ratio) if (0.0..=1.0).contains(&ratio) => Some(ratio),
        Some(ratio) => {
            c.report("sample_ratio", format!("{ratio} is not between 0 and 1"));
            None
        }
    };
    let service_name = match raw.service_name.map(|s| s.trim().to_owned()) {
        None => Some(DEFAULT_SERVICE_NAME.to_owned()),
        Some(name) if name.is_empty() => {
            c.report("service_name", "must not be empty");
            None
        }
        Some(name) => Some(name),
    };
    let timeout = optional_duration(&mut c, "timeout", raw.timeout, DEFAULT_TIMEOUT).filter(|t| {
        let ok = (Duration::from_secs(1)..=Duration::from_secs(60)).contains(t);
        if !ok {
            c.report("timeout", "must be between 1s and 60s");
        }
        ok
    });
    let mut headers = Vec::new();
    for (name, spec) in raw.headers.unwrap_or_default() {
        let key = format!("headers.{name}");
        if let Some(header) = c.parse(&key, Some((name.clone(), spec)), |(name, spec)| {
            header(&name, &spec, env)
        }) {
            headers.push(header);
        }
    }
    if !c.ok() {
        return None;
    }
    Some(TelemetryConfig {
        otlp: Some(OtlpConfig {
            traces_url: traces_url?,
            protocol: protocol?,
            sample_ratio: sample_ratio?,
            service_name: service_name?,
            timeout: timeout?,
            headers,
        }),
    })
}

/// The URL spans are posted to: the base with `/v1/traces`, or the traces URL itself.
fn traces_url(endpoint: &str) -> Result<Url, String> {
    let url = Url::parse(endpoint.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL (OTLP/HTTP)".to_owned());
    }
    if url.host().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err("must be a URL with a host and no query or fragment".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials go in [telemetry.otlp.headers], not the URL".to_owned());
    }
    if url.path().ends_with(TRACES_PATH) {
        return Ok(url);
    }
    let path = format!("{}{TRACES_PATH}", url.path().trim_end_matches('/'));
    let mut traces = url;
    traces.set_path(&path);
    Ok(traces)
}

fn header(name: &str, spec: &str, env: &Environment) -> Result<(String, Secret), String> {
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_name {
        return Err(format!("`{name}` is not a header name"));
    }
    let secret = Secret::resolve(spec, env)?;
    let value = secret.expose();
    if value.is_empty() || value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return Err("the value is empty or not a valid header value".to_owned());
    }
    Ok((name.to_ascii_lowercase(), secret))
}

/// A number written as a TOML float or integer or, as environment overrides are, as a
/// string.
fn lenient_f64<'de, D: Deserializer<'de>>(de: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrText {
        Float(f64),
        Int(i64),
        Text(String),
    }
    let number = match NumOrText::deserialize(de)? {
        NumOrText::Float(n) => n,
        // Ratios are 0 or 1 when written as integers: exact as floats.
        NumOrText::Int(n) => n as f64,
        NumOrText::Text(text) => text
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a number")))?,
    };
    if number.is_finite() {
        Ok(Some(number))
    } else {
        Err(serde::de::Error::custom("not a finite number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<TelemetryConfig, String> {
        check_env(text, Environment::default())
    }

    fn check_env(text: &str, env: Environment) -> Result<TelemetryConfig, String> {
        let raw: RawTelemetry = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut problems = Vec::new();
        telemetry(raw, &env, &mut problems).ok_or_else(|| format!("{problems:?}"))
    }

    #[test]
    fn without_the_section_nothing_is_traced() {
        assert!(check("").unwrap().otlp.is_none());
    }

    #[test]
    fn the_base_url_gets_the_traces_path_and_the_defaults() {
        let otlp = check("[otlp]\nendpoint = \"http://127.0.0.1:4318\"")
            .unwrap()
            .otlp
            .unwrap();
        assert_eq!(otlp.traces_url.as_str(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(otlp.protocol, OtlpProtocol::Protobuf);
        assert!((otlp.sample_ratio - 1.0).abs() < f64::EPSILON);
        assert_eq!(otlp.service_name, "token-broker");
        assert_eq!(otlp.timeout, Duration::from_secs(10));
        let full = check("[otlp]\nendpoint = \"https://otel.example/otlp/v1/traces\"\nprotocol = \"http/json\"\nsample_ratio = 0")
            .unwrap()
            .otlp
            .unwrap();
        assert_eq!(
            full.traces_url.as_str(),
            "https://otel.example/otlp/v1/traces"
        );
        assert_eq!(full.protocol, OtlpProtocol::Json);
        assert!(full.sample_ratio.abs() < f64::EPSILON);
    }

    #[test]
    fn headers_are_secret_references() {
        let env = Environment::from_pairs([("OTLP_KEY".to_owned(), "Bearer abc".to_owned())]);
        let otlp = check_env(
            "[otlp]\nendpoint = \"http://127.0.0.1:4318\"\n[otlp.headers]\nAuthorization = \"env:OTLP_KEY\"",
            env,
        )
        .unwrap()
        .otlp
        .unwrap();
        assert_eq!(otlp.headers.len(), 1);
        assert_eq!(otlp.headers[0].0, "authorization");
        assert_eq!(otlp.headers[0].1.expose(), "Bearer abc");
        assert!(!format!("{otlp:?}").contains("abc"));
    }

    #[test]
    fn every_mistake_is_named() {
        let error = check(
            "[otlp]\nendpoint = \"grpc://collector:4317\"\nprotocol = \"grpc\"\nsample_ratio = 1.5\nservice_name = \" \"\ntimeout = \"0s\"\n[otlp.headers]\n\"bad header\" = \"x\"",
        )
        .unwrap_err();
        for key in [
            "telemetry.otlp.endpoint",
            "telemetry.otlp.protocol",
            "telemetry.otlp.sample_ratio",
            "telemetry.otlp.service_name",
            "telemetry.otlp.timeout",
            "telemetry.otlp.headers.bad header",
        ] {
            assert!(error.contains(key), "{key} in {error}");
        }
        let missing = check("[otlp]\nsample_ratio = 0.5").unwrap_err();
        assert!(missing.contains("telemetry.otlp.endpoint"), "{missing}");
        let credentials = check("[otlp]\nendpoint = \"http://u:p@127.0.0.1:4318\"").unwrap_err();
        assert!(credentials.contains("headers"), "{credentials}");
    }

    #[test]
    fn a_ratio_from_the_environment_is_read_as_text() {
        let otlp = check("[otlp]\nendpoint = \"http://127.0.0.1:4318\"\nsample_ratio = \"0.25\"")
            .unwrap()
            .otlp
            .unwrap();
        assert!((otlp.sample_ratio - 0.25).abs() < f64::EPSILON);
    }
}
