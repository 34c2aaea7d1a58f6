//! W3C Trace Context (`traceparent`, `tracestate`): the caller's trace taken as the
//! parent of the request's span, and each upstream call's span sent on. Only when
//! tracing is on (`[telemetry.otlp]`): off, no header is read or written here, so the
//! hot path pays one test of a flag.

use actix_web::http::header::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C Trace Context headers (Trace Context Level 1 §3.2, §3.3).
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Whether the broker takes part in traces. Decided once from the configuration and
/// handed to the request middleware, the upstream clients and the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Propagation {
    enabled: bool,
}

impl Propagation {
    /// Tracing off: nothing read, nothing sent.
    pub const OFF: Self = Self { enabled: false };

    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }

    pub fn enabled(self) -> bool {
        self.enabled
    }

    /// Makes the trace the caller names in `headers` the parent of `span` (still
    /// unstarted). A missing or malformed `traceparent` leaves `span` the root of a
    /// trace of its own.
    pub fn adopt(self, span: &tracing::Span, headers: &HeaderMap) {
        if !self.enabled || !headers.contains_key(TRACEPARENT) {
            return;
        }
        let parent = TraceContextPropagator::new().extract(&Incoming(headers));
        // Fails only without the OpenTelemetry layer (a broker in a test process):
        // then there is nothing to parent.
        let _ = span.set_parent(parent);
    }

    /// `span`'s context as the `traceparent` (and `tracestate`) of an outgoing
    /// request, replacing any already there.
    pub fn inject(self, span: &tracing::Span, headers: &mut reqwest::header::HeaderMap) {
        if !self.enabled {
            return;
        }
        TraceContextPropagator::new().inject_context(&span.context(), &mut Outgoing(headers));
    }
}

struct Incoming<'a>(&'a HeaderMap);

impl Extractor for Incoming<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

struct Outgoing<'a>(&'a mut reqwest::header::HeaderMap);

impl Injector for Outgoing<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(key.as_bytes()),
            reqwest::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_nothing_is_written() {
        let mut headers = reqwest::header::HeaderMap::new();
        Propagation::OFF.inject(&tracing::info_span!("call"), &mut headers);
        assert!(headers.is_empty());
    }
}
