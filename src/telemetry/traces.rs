//! OpenTelemetry traces over OTLP/HTTP (`[telemetry.otlp]`): the broker's spans —
//! every request (`http/middleware.rs`), every upstream call (`telemetry::upstream`) —
//! handed by `tracing-opentelemetry` to a batch processor that exports from a tokio
//! runtime of its own, with our reqwest client, and is flushed at shutdown.

use std::collections::HashMap;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::runtime::TokioCurrentThread;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, Tracer};
use tracing::Metadata;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterFn, filter_fn};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{OtlpConfig, OtlpProtocol};

/// The exporting pipeline; [`Traces::shutdown`] sends what is still queued.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Builds the exporter and its batch processor (whose thread starts now) and the
    /// tracer the subscriber's layer writes to.
    pub fn start(config: &OtlpConfig) -> Result<(Self, Tracer), String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("token-broker/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .build()
            .map_err(|e| format!("cannot build the OTLP HTTP client: {e}"))?;
        // The exporter percent-decodes header values (the OTEL_EXPORTER_OTLP_HEADERS
        // convention): every `%` is escaped first, so a collector key is sent exactly
        // as configured, `%41` and all.
        let headers: HashMap<String, String> = config
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.expose().replace('%', "%25")))
            .collect();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(config.traces_url.as_str())
            .with_protocol(match config.protocol {
                OtlpProtocol::Protobuf => Protocol::HttpBinary,
                OtlpProtocol::Json => Protocol::HttpJson,
            })
            .with_timeout(config.timeout)
            .with_headers(headers)
            .build()
            .map_err(|e| format!("cannot build the OTLP exporter: {e}"))?;
        // actix-web's workers are current-thread runtimes: the exporter gets a thread
        // and a runtime of its own rather than competing with requests.
        let processor = BatchSpanProcessor::builder(exporter, TokioCurrentThread).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sample_ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("token-broker");
        Ok((Self { provider }, tracer))
    }

    /// The layer that turns the broker's spans (not its log events, not other crates'
    /// spans — the exporter's own HTTP client among them) into OpenTelemetry spans.
    pub fn layer<S>(tracer: Tracer) -> impl Layer<S>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(broker_spans())
    }

    /// Exports what is queued and stops the processor; a collector that cannot be
    /// reached then is logged, not waited for past the export timeout.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "traces not all exported at shutdown");
        }
    }
}

fn broker_spans() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    filter_fn(|metadata| {
        metadata.is_span()
            && metadata.target().starts_with("token_broker")
            && *metadata.level() <= tracing::Level::INFO
    })
}
