//! Logs, metrics and traces. Logs go to stderr (stdout is kept for what commands print,
//! such as the demo's instructions), one JSON object a line or human-readable; traces,
//! when `[telemetry.otlp]` is set, to an OpenTelemetry collector.

pub mod audit;
pub mod build_info;
pub mod cache_metrics;
pub mod metrics;
pub mod propagation;
pub mod traces;
pub mod upstream;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

use crate::config::{LogConfig, LogFormat, OtlpConfig};
use traces::Traces;

/// Installs the global subscriber. Fails only if one is already installed, which the
/// caller reports; configuration was validated before this point.
pub fn init_logging(config: &LogConfig) -> Result<(), String> {
    let filter = EnvFilter::try_new(&config.level).map_err(|e| e.to_string())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    result.map_err(|e| e.to_string())
}

/// [`init_logging`], and with `otlp` the traces' exporter beside it: the log filter
/// (`log.level`) then applies to the log lines only, so a quiet log still traces every
/// request. The returned [`Traces`] is shut down when serving ends, to flush.
pub fn init_logging_and_traces(
    config: &LogConfig,
    otlp: Option<&OtlpConfig>,
) -> Result<Option<Traces>, String> {
    let Some(otlp) = otlp else {
        return init_logging(config).map(|()| None);
    };
    let filter = EnvFilter::try_new(&config.level).map_err(|e| e.to_string())?;
    let (traces, tracer) = Traces::start(otlp)?;
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match config.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(logs)
        .with(Traces::layer(tracer))
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(Some(traces))
}
