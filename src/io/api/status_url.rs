//! `plan --status-url`: the status a running daemon serves, read with no
//! token, no redirects, a timeout and a size bound, the URL named without
//! its credentials.

use std::time::Duration;

use super::{error_chain, shown_url as without_credentials};

/// The most of a daemon's `/status` answer `get_status` reads. The status of
/// 10,000 entries with their history is a few MiB; past this bound the answer
/// is refused rather than held in memory.
pub const MAX_STATUS_BYTES: usize = 256 * 1024 * 1024;

/// How long `get_status` may take in all, body included.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(120);

/// Why `get_status` has no status. It names the URL without a password or
/// query, which may carry a credential (`without_credentials`).
#[derive(Debug, thiserror::Error)]
#[error("cannot read the status from {url}: {reason}")]
pub struct StatusUrlError {
    pub url: String,
    pub reason: String,
}

/// The status a running daemon serves at `url` (its `--listen` address and
/// `/status`), for `plan --status-url`. No token is sent: `/status` needs
/// none. A URL's `user:password@` is sent as basic auth, for a daemon behind
/// an authenticating proxy.
pub async fn get_status(url: &str) -> Result<crate::status::Status, StatusUrlError> {
    get_status_within(url, STATUS_TIMEOUT, MAX_STATUS_BYTES).await
}

pub(super) async fn get_status_within(
    url: &str,
    timeout: Duration,
    max_bytes: usize,
) -> Result<crate::status::Status, StatusUrlError> {
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    let Some(parsed) = parsed else {
        return Err(StatusUrlError {
            url: url.to_owned(),
            reason: "not an http:// or https:// URL".into(),
        });
    };
    let fail = |reason: String| StatusUrlError {
        url: without_credentials(&parsed),
        reason,
    };
    // As in `Api::new`: an already installed provider is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .user_agent(concat!("resetd/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        // A status answered elsewhere (a login page, another daemon) is not
        // this daemon's: a 3xx is an error, as for the DELETE.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| fail(format!("cannot build the HTTP client: {}", error_chain(&e))))?;
    // Errors lose their URL: it is named once, without credentials.
    let reqwest_error = |e: reqwest::Error| {
        if e.is_timeout() {
            fail(format!("no complete answer within {timeout:?}"))
        } else {
            fail(error_chain(&e.without_url()))
        }
    };
    let mut response = client
        .get(parsed.clone())
        .send()
        .await
        .map_err(reqwest_error)?;
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parsed.join(v).ok())
            .map_or_else(
                || "(no usable Location)".to_owned(),
                |l| without_credentials(&l),
            );
        return Err(fail(format!(
            "HTTP {} redirect to {location}; redirects are not followed: give the daemon's own \
             /status URL",
            status.as_u16()
        )));
    }
    if !status.is_success() {
        return Err(fail(format!(
            "HTTP {}; expected 200 from a resetd daemon's /status (`resetd run --listen ADDR`)",
            status.as_u16()
        )));
    }
    let too_large = || {
        fail(format!(
            "the answer is larger than {} MiB",
            max_bytes / (1024 * 1024)
        ))
    };
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(reqwest_error)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    // The daemon serves `null` until it has loaded its status.
    let value: Option<crate::status::Status> = serde_json::from_slice(&body)
        .map_err(|e| fail(format!("the answer is not a resetd status: {e}")))?;
    value.ok_or_else(|| fail("the daemon has not published its status yet; try again".into()))
}
