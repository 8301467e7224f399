//! How `resetd run` is asked to stop (SIGTERM, SIGINT) and how long the work
//! under way may take to finish: the same for `--once` and the daemon.
//!
//! # Guarantees
//! - A second SIGTERM/SIGINT exits at once (128 + its number).
//! - The handlers are installed when `signal()` is called, not when its
//!   future is first polled: a signal that arrives in between is not lost
//!   and does not kill the process with the status half-considered.
//! - `finish_within` never cuts the work short before a stop; after one, the
//!   work has the grace period to finish its request in flight (the executor
//!   starts no new one), then it is dropped. A dropped request was recorded
//!   as in flight before it was sent, so it is sent again next time.

use std::future::Future;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal as unix_signal};
use tokio::sync::watch;

/// The signal that asked resetd to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Int,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Int => "SIGINT",
        }
    }

    /// The shell's convention for a command ended by this signal (128 + its
    /// number): what `run --once` exits with when a signal stopped it.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Term => 143,
            Signal::Int => 130,
        }
    }
}

/// The first SIGTERM or SIGINT, logged when it arrives. A second one ends
/// the process at once (exit 128 + its number), as an operator who sends it
/// means: what is durable then is what a crash would leave (a request in
/// flight was recorded as such, and is sent again next time). Must be
/// called inside a tokio runtime.
pub fn signal() -> std::io::Result<impl Future<Output = Signal> + Send + 'static> {
    let mut term = unix_signal(SignalKind::terminate())?;
    let mut int = unix_signal(SignalKind::interrupt())?;
    Ok(async move {
        let caught = tokio::select! {
            _ = term.recv() => Signal::Term,
            _ = int.recv() => Signal::Int,
        };
        tracing::info!(
            signal = caught.name(),
            "{}: shutting down; no new request starts, one in flight may finish \
             (a second signal exits at once)",
            caught.name()
        );
        tokio::spawn(async move {
            let again = tokio::select! {
                _ = term.recv() => Signal::Term,
                _ = int.recv() => Signal::Int,
            };
            tracing::warn!(
                signal = again.name(),
                "{} again: exiting now; a request in flight is sent again next time",
                again.name()
            );
            std::process::exit(i32::from(again.exit_code()));
        });
        caught
    })
}

/// Drive `work` to its end. Once `stop` is set, it has `grace` more to
/// finish; `None` when the grace ran out and `work` was dropped.
pub async fn finish_within<T>(
    work: impl Future<Output = T>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) -> Option<T> {
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => return Some(out),
        // A closed channel can never ask to stop: the branch is disabled.
        Ok(_) = stop.wait_for(|s| *s) => {}
    }
    tokio::time::timeout(grace, work).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_gets_the_grace_after_a_stop_and_no_more() {
        let (tx, rx) = watch::channel(false);
        let slow = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            "done"
        };
        let stopper = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = tx.send(true);
        };
        let (out, ()) = tokio::join!(
            finish_within(slow, rx.clone(), Duration::from_secs(2)),
            stopper
        );
        assert_eq!(out, None, "dropped at 1 s + 2 s of grace");

        let quick = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "done"
        };
        // Already stopped: the work still has its grace.
        let out = finish_within(quick, rx, Duration::from_secs(2)).await;
        assert_eq!(out, Some("done"));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_stop_work_runs_to_its_end() {
        let (tx, rx) = watch::channel(false);
        let long = async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            7
        };
        assert_eq!(finish_within(long, rx, Duration::ZERO).await, Some(7));
        drop(tx);
    }
}
