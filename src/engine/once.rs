//! `run --once`: load the config, make one pass (the daemon's own), wait a
//! bounded time for notifications, say what happened and what is left.

use anyhow::Context as _;
use tracing::Level;

use crate::cli::RunArgs;
use crate::commands::{Outcome, print_out};
use crate::config::{self, Config};
use crate::reconcile::Clock as _;
use crate::report;

/// The longest `run --once` waits for notifications after its resets.
const NOTIFY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Run `args.config` once.
pub fn run_once(args: &RunArgs) -> anyhow::Result<Outcome> {
    let loaded = config::load_beside(&args.config, args.status.as_deref(), chrono::Utc::now())
        .with_context(|| format!("cannot read config {}", args.config.display()))?;
    let mut loaded = loaded;
    let file = args.config.display().to_string();
    config::refuse_token_file(&mut loaded, args.token_file.as_deref(), &file);
    crate::logging::diagnostics(&loaded.diagnostics);
    let Some(config) = loaded.config else {
        tracing::error!(file = %args.config.display(), "config is invalid; nothing to run");
        return Ok(Outcome::Failed);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(reconcile_once(args, &config))
}

async fn reconcile_once(args: &RunArgs, config: &Config) -> anyhow::Result<Outcome> {
    // From here on SIGTERM/SIGINT ask the run to stop between batches and
    // write its status, instead of killing it mid-way.
    let signal = crate::shutdown::signal()?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let caught = tokio::spawn(async move {
        let caught = signal.await;
        let _ = stop_tx.send(true);
        caught
    });
    let clock = crate::reconcile::SystemClock;
    let crate::start::Opened {
        mut store,
        mut status,
        path: status_path,
        credentials,
    } = crate::start::open(args, config, clock.now())?;
    let events = crate::notify::RunEvents {
        notifier: crate::notify::start_available(config, std::sync::Arc::new(())),
    };
    let done = crate::pass::Reconciler::new(args, credentials, clock)
        .pass(
            config,
            &mut status,
            crate::pass::Ports {
                store: &mut store,
                observer: &events,
                control: &mut (),
                stop,
                source_revision: crate::revision::of(&args.config, args.source_revision.as_deref()),
            },
        )
        .await?;
    // Delivery runs beside the resets; the run waits a bounded time for it.
    let undelivered = events.notifier.drain(NOTIFY_WAIT).await;
    if undelivered > 0 {
        tracing::warn!(
            "{undelivered} notification(s) not delivered within {NOTIFY_WAIT:?}; given up"
        );
    }
    print_out(&report::plan_human(&done.plan))?;
    if let Some(e) = &done.token_error {
        // `start` checked for a token; it went away since.
        tracing::error!("{e}: {} due reset(s) not sent", done.blocked);
    }
    if let Some(summary) = &done.summary {
        crate::logging::conclude(
            Level::INFO,
            &format!(
                "{} succeeded, {} failed, {} dry run(s), {} expired, {} request(s); status in {}",
                summary.succeeded.len(),
                summary.failed.len(),
                summary.dry_runs.len(),
                summary.expired.len(),
                summary.requests,
                status_path.display()
            ),
        );
    }
    let stopped_early = done.summary.as_ref().is_none_or(|s| s.interrupted);
    // The task ends in the same step that sets the stop, so a stop implies
    // it has finished.
    let signal = if caught.is_finished() {
        caught.await.ok()
    } else {
        caught.abort();
        None
    };
    match signal {
        Some(signal) if stopped_early => {
            let left = done.unsent_batches;
            crate::logging::conclude(
                Level::WARN,
                &format!(
                    "interrupted by {}: {left} batch(es) not sent; run again to resume (status in {})",
                    signal.name(),
                    status_path.display()
                ),
            );
            Ok(Outcome::Interrupted(signal))
        }
        _ => Ok(match done.summary {
            Some(s) if s.failed.is_empty() && done.blocked == 0 => Outcome::Ok,
            _ => Outcome::Failed,
        }),
    }
}
