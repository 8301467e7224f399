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
    // Colour only for a person at a terminal: pipes, files and log shippers
    // get plain text, and so does anyone who sets NO_COLOR or TERM=dumb.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.with_target(false).try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}
