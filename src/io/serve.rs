//! The HTTP endpoints of `--listen`: /healthz, /readyz, /metrics, /status.
//! The only axum user; it reads shared state and never changes it.
//!
//! `/metrics` negotiates its format: OpenMetrics (what `Metrics::encode`
//! writes) for a client whose `Accept` asks for it, as Prometheus does;
//! otherwise Prometheus text 0.0.4, which every scraper and `curl` reader
//! understands. Each body matches the `Content-Type` it is sent with.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// The `Content-Type` of an OpenMetrics body.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The `Content-Type` of a Prometheus text 0.0.4 body.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The two expositions `/metrics` can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    OpenMetrics,
    PrometheusText,
}

impl Exposition {
    /// The format for an `Accept` header. OpenMetrics only when the client
    /// names it and likes it at least as much as `text/plain`: a wildcard
    /// (`*/*`) or no header at all gets plain text, which every client reads.
    pub fn negotiate(accept: Option<&str>) -> Exposition {
        let Some(accept) = accept else {
            return Exposition::PrometheusText;
        };
        let (mut openmetrics, mut text) = (0.0_f64, 0.0_f64);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let (mut q, mut version) = (1.0_f64, None);
            for param in parts {
                if let Some((key, value)) = param.split_once('=') {
                    let value = value.trim().trim_matches('"');
                    match key.trim().to_ascii_lowercase().as_str() {
                        "q" => q = value.parse().unwrap_or(0.0),
                        "version" => version = Some(value.to_owned()),
                        _ => {}
                    }
                }
            }
            match (media.as_str(), version.as_deref()) {
                // Only the version this body is; a client asking for
                // OpenMetrics 0.0.1 alone gets the text format it also reads.
                ("application/openmetrics-text", None | Some("1.0.0")) => {
                    openmetrics = openmetrics.max(q);
                }
                ("text/plain", None | Some("0.0.4")) | ("text/*" | "*/*", _) => text = text.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Exposition::OpenMetrics
        } else {
            Exposition::PrometheusText
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => OPENMETRICS,
            Exposition::PrometheusText => PROMETHEUS_TEXT,
        }
    }

    /// The body in this format, from the OpenMetrics text prometheus-client
    /// writes.
    pub fn render(self, openmetrics: &str) -> String {
        match self {
            Exposition::OpenMetrics => openmetrics.to_owned(),
            Exposition::PrometheusText => prometheus_text(openmetrics),
        }
    }
}

/// OpenMetrics → Prometheus text 0.0.4, for what prometheus-client emits.
/// In OpenMetrics a counter family `x` has samples `x_total` and an info
/// family `x` samples `x_info`; in 0.0.4 the `# HELP`/`# TYPE` lines must
/// name the sample itself, or Prometheus and promtool see an undocumented,
/// untyped metric. `# UNIT` and `# EOF` do not exist in 0.0.4; `unknown` is
/// 0.0.4's `untyped`, `info` a gauge.
fn prometheus_text(openmetrics: &str) -> String {
    let renamed = |line: &str| -> Option<(String, &'static str)> {
        let (name, kind) = line.strip_prefix("# TYPE ")?.split_once(' ')?;
        match kind {
            "counter" => Some((name.to_owned(), "_total")),
            "info" => Some((name.to_owned(), "_info")),
            _ => None,
        }
    };
    let suffixes: std::collections::HashMap<String, &'static str> =
        openmetrics.lines().filter_map(renamed).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?.split_once(' ')?)));
        match descriptor {
            Some((prefix, (name, rest))) => {
                let suffix = suffixes.get(name).copied().unwrap_or_default();
                let rest = match (prefix, rest) {
                    ("# TYPE ", "unknown") => "untyped",
                    ("# TYPE ", "info") => "gauge",
                    _ => rest,
                };
                out.push_str(&format!("{prefix}{name}{suffix} {rest}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// What the endpoints show, updated by the daemon.
pub struct Shared {
    pub metrics: Metrics,
    /// The status file as JSON, refreshed after each reconcile pass.
    pub status: RwLock<serde_json::Value>,
    /// A good config is loaded and resetd is not shutting down.
    pub ready: AtomicBool,
}

impl Shared {
    pub fn new() -> Self {
        Self::with_metrics(Metrics::new())
    }

    pub fn with_metrics(metrics: Metrics) -> Self {
        Shared {
            metrics,
            status: RwLock::new(serde_json::Value::Null),
            ready: AtomicBool::new(false),
        }
    }

    pub fn set_status(&self, status: &crate::status::Status) {
        self.metrics.status(status);
        self.show_status(status);
    }

    /// `/status` only, the per-phase gauges left as they are: what an HA
    /// standby shows of the shared status (only the leader counts entries,
    /// so an alert on them fires once per group, not once per member).
    pub fn show_status(&self, status: &crate::status::Status) {
        if let (Ok(value), Ok(mut slot)) = (serde_json::to_value(status), self.status.write()) {
            *slot = value;
        }
    }
}

/// Deliveries are counted in the shared metrics.
impl crate::notify::NotifyObserver for Shared {
    fn delivered(&self, receiver: &str, result: &str) {
        self.metrics.delivered(receiver, result);
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get({
                let shared = Arc::clone(&shared);
                move || async move {
                    if shared.ready.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get({
                let shared = Arc::clone(&shared);
                move |headers: HeaderMap| async move {
                    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
                    let exposition = Exposition::negotiate(accept);
                    (
                        [
                            (header::CONTENT_TYPE, exposition.content_type()),
                            // The body depends on Accept: caches must not mix them.
                            (header::VARY, "accept"),
                        ],
                        exposition.render(&shared.metrics.encode()),
                    )
                }
            }),
        )
        .route(
            "/status",
            get(move || async move {
                let body = shared.status.read().map(|s| s.clone()).unwrap_or_default();
                axum::Json(body).into_response()
            }),
        )
}

/// Serve until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Prometheus 2.x sends with its default scrape protocols.
    const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    #[test]
    fn negotiation_prefers_what_the_client_names_first() {
        use Exposition::{OpenMetrics, PrometheusText};
        for (accept, expected) in [
            (None, PrometheusText),
            (Some(""), PrometheusText),
            (Some("*/*"), PrometheusText),
            (Some("text/plain"), PrometheusText),
            (Some("application/json"), PrometheusText),
            (Some(PROMETHEUS_ACCEPT), OpenMetrics),
            (Some("application/openmetrics-text"), OpenMetrics),
            (
                Some("Application/OpenMetrics-Text; Version=1.0.0"),
                OpenMetrics,
            ),
            (
                Some("application/openmetrics-text; version=0.0.1"),
                PrometheusText,
            ),
            (Some("application/openmetrics-text;q=0"), PrometheusText),
            (
                Some("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"),
                PrometheusText,
            ),
            (
                Some("text/plain;q=0.5,application/openmetrics-text;q=0.9"),
                OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;q=0.2,*/*;q=0.1"),
                OpenMetrics,
            ),
        ] {
            assert_eq!(
                Exposition::negotiate(accept),
                expected,
                "Accept: {accept:?}"
            );
        }
    }

    #[test]
    fn text_names_counters_and_infos_by_their_samples_and_drops_openmetrics_lines() {
        let openmetrics = "# HELP a_requests Requests.\n# TYPE a_requests counter\n\
            a_requests_total{code=\"200\"} 3\n\
            # HELP a_seconds Time.\n# TYPE a_seconds gauge\n# UNIT a_seconds seconds\na_seconds 2\n\
            # HELP a_build Build.\n# TYPE a_build info\na_build_info{v=\"1\"} 1\n\
            # HELP a_odd Odd.\n# TYPE a_odd unknown\na_odd 1\n# EOF\n";
        assert_eq!(
            prometheus_text(openmetrics),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\n\
             a_requests_total{code=\"200\"} 3\n\
             # HELP a_seconds Time.\n# TYPE a_seconds gauge\na_seconds 2\n\
             # HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{v=\"1\"} 1\n\
             # HELP a_odd Odd.\n# TYPE a_odd untyped\na_odd 1\n"
        );
    }
}
