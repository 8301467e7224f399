//! Log setup: `RESETD_LOG` is the tracing filter (default `info`),
//! `RESETD_LOG_FORMAT=json` emits one JSON object per line for log shippers.
//! Logs go to stderr, leaving stdout to command output.
//!
//! # Guarantees
//! - Under `RESETD_LOG_FORMAT=json`, everything resetd itself writes to
//!   stderr is a JSON object per line, in every command: logs, the closing
//!   line of `run --once` (`conclude`), a config's diagnostics on `plan`'s
//!   stderr (`print_diagnostics`) and fatal errors (`fatal`). Only clap's
//!   usage errors, written before any command runs, stay plain.
//! - The closing line and fatal errors are never filtered out by
//!   `RESETD_LOG`: they were unconditional lines before they were events.

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{DefaultFields, Format as Fmt, Full, Json, JsonFields};
use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::fmt::{MakeWriter, SubscriberBuilder};

use crate::diagnostic::Diagnostic;

/// The shape of what goes to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// `RESETD_LOG_FORMAT`, the one place it is read.
pub fn format() -> anyhow::Result<Format> {
    match std::env::var("RESETD_LOG_FORMAT").as_deref() {
        Ok("json") => Ok(Format::Json),
        Ok("text") | Err(_) => Ok(Format::Text),
        Ok(other) => anyhow::bail!("RESETD_LOG_FORMAT must be `text` or `json`, not `{other}`"),
    }
}

pub fn init() -> anyhow::Result<()> {
    // notify warns about its own bookkeeping when a watched directory is
    // removed (it drops the watch twice): noise for an operator, since
    // resetd reports watch failures itself. A `notify=` directive in
    // RESETD_LOG still wins.
    let given = std::env::var("RESETD_LOG").ok();
    let quiet_notify = given.as_deref().is_none_or(|g| !g.contains("notify"));
    let filter = EnvFilter::try_new(given.as_deref().unwrap_or("info"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = match "notify=error".parse() {
        Ok(directive) if quiet_notify => filter.add_directive(directive),
        _ => filter,
    };
    let format = format()?;
    // Colour only for a person at a terminal: pipes, files and log shippers
    // get plain text, and so does anyone who sets NO_COLOR or TERM=dumb.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let result = match format {
        Format::Json => json(builder).try_init(),
        Format::Text => builder.with_target(false).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// The JSON shape of every event resetd writes, logs and closing lines alike.
fn json<F, W>(
    builder: SubscriberBuilder<DefaultFields, Fmt<Full, SystemTime>, F, W>,
) -> SubscriberBuilder<JsonFields, Fmt<Json, SystemTime>, F, W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    builder.json().flatten_event(true)
}

/// The line a command ends with (`run --once`'s summary, why it stopped):
/// `resetd: <line>` for people; under json, an event at `level`.
pub fn conclude(level: Level, line: &str) {
    match format() {
        Ok(Format::Json) => json_event(level, line),
        _ => eprintln!("resetd: {line}"),
    }
}

/// Print the error that ends the command (exit 2), with its causes.
pub fn fatal(error: &anyhow::Error) {
    match format() {
        Ok(Format::Json) => json_event(Level::ERROR, &format!("{error:#}")),
        _ => eprintln!("resetd: error: {error:#}"),
    }
}

/// One JSON event on stderr, whether or not logging was set up and whatever
/// `RESETD_LOG` filters out.
fn json_event(level: Level, message: &str) {
    tracing::subscriber::with_default(json_subscriber(), || match level {
        Level::ERROR => tracing::error!(target: "resetd", "{message}"),
        Level::WARN => tracing::warn!(target: "resetd", "{message}"),
        _ => tracing::info!(target: "resetd", "{message}"),
    });
}

/// What `json_event` and `print_diagnostics` write with: every event, as JSON.
fn json_subscriber() -> impl tracing::Subscriber + Send + Sync {
    json(tracing_subscriber::fmt().with_writer(std::io::stderr))
        .with_max_level(Level::TRACE)
        .with_ansi(false)
        .finish()
}

/// A config's diagnostics for a command that sets up no logging (`plan`):
/// rustc-like text for people, JSON events under json.
pub fn print_diagnostics(found: &[Diagnostic]) {
    match format() {
        Ok(Format::Json) => tracing::subscriber::with_default(json_subscriber(), || {
            diagnostics(found);
        }),
        _ => eprint!("{}", crate::diagnostic::render_human(found)),
    }
}

/// A config's diagnostics as log events, with their location as fields.
pub fn diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        if d.is_error() {
            tracing::error!(file = %d.file, line = d.line, column = d.column, path = %d.path, "{}", d.message);
        } else {
            tracing::warn!(file = %d.file, line = d.line, column = d.column, path = %d.path, "{}", d.message);
        }
    }
}
