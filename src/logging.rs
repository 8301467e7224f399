//! Log setup: `RESETD_LOG` is the tracing filter (default `info`),
//! `RESETD_LOG_FORMAT=json` emits one JSON object per line for log shippers.
//! Logs go to stderr, leaving stdout to command output.

use tracing_subscriber::EnvFilter;

pub fn init() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("RESETD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match std::env::var("RESETD_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") | Err(_) => false,
        Ok(other) => anyhow::bail!("RESETD_LOG_FORMAT must be `text` or `json`, not `{other}`"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.with_target(false).try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}
