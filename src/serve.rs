//! The HTTP endpoints of `--listen`: /healthz, /readyz, /metrics, /status.
//! The only axum user; it reads shared state and never changes it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

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
        Shared {
            metrics: Metrics::new(),
            status: RwLock::new(serde_json::Value::Null),
            ready: AtomicBool::new(false),
        }
    }

    pub fn set_status(&self, status: &crate::status::Status) {
        self.metrics.status(status);
        if let (Ok(value), Ok(mut slot)) = (serde_json::to_value(status), self.status.write()) {
            *slot = value;
        }
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
                move || async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        shared.metrics.encode(),
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
