//! Config file watching: the only notify user. It only signals "maybe
//! changed"; the daemon re-reads the file and compares digests.
//!
//! The config's *directory* is watched, not the file: editors save by
//! writing a temp file and renaming it over the original, `git checkout`
//! replaces files, and Kubernetes ConfigMaps swap a `..data` symlink. A watch
//! on the file's inode would miss all of these. Every event in the directory
//! counts (event kinds differ by editor and OS), except those about resetd's
//! own status, lock and temp files. An overflow (`Rescan`) counts too.
//!
//! Events are debounced: a change is reported once the directory has been
//! quiet for the debounce period, or at the latest after `max_wait` of
//! continuous events, so a file written continuously still reloads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A live watch; dropping it stops the events.
pub struct ConfigWatch {
    _watcher: notify::RecommendedWatcher,
    events: mpsc::UnboundedReceiver<()>,
}

/// Watch the directory holding `config`, ignoring events that only concern
/// paths starting with `ignore_prefix` (the status file and its companions).
pub fn watch(config: &Path, status: &Path) -> notify::Result<ConfigWatch> {
    let ignore_prefix = Some(status.to_owned());
    let dir = match config.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let (tx, events) = mpsc::unbounded_channel();
    let ignored = move |p: &PathBuf| {
        ignore_prefix.as_ref().is_some_and(|prefix| {
            p.file_name()
                .zip(prefix.file_name())
                .is_some_and(|(name, own)| {
                    name.to_string_lossy().starts_with(&*own.to_string_lossy())
                })
        })
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            Ok(e) => e.need_rescan() || e.paths.is_empty() || !e.paths.iter().all(&ignored),
            // An error may mean lost events: treat it as a change.
            Err(_) => true,
        };
        if relevant {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(ConfigWatch {
        _watcher: watcher,
        events,
    })
}

impl ConfigWatch {
    /// Wait for the next debounced change. `None` if the watcher died.
    pub async fn changed(&mut self, quiet: Duration, max_wait: Duration) -> Option<()> {
        debounce(&mut self.events, quiet, max_wait).await
    }
}

/// The longest a stream of events can delay a reload.
pub fn max_wait(quiet: Duration) -> Duration {
    (quiet * 5).max(Duration::from_secs(1))
}

/// Wait for a first event, then until `quiet` passes without one, but no
/// longer than `max_wait` after the first.
pub async fn debounce(
    rx: &mut mpsc::UnboundedReceiver<()>,
    quiet: Duration,
    max_wait: Duration,
) -> Option<()> {
    rx.recv().await?;
    let give_up = Instant::now() + max_wait;
    loop {
        let deadline = (Instant::now() + quiet).min(give_up);
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(())) => continue,
            Ok(None) | Err(_) => return Some(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_becomes_one_change_after_the_quiet_period() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for _ in 0..5 {
            tx.send(()).unwrap();
        }
        let start = Instant::now();
        debounce(&mut rx, Duration::from_millis(200), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        assert!(rx.try_recv().is_err(), "the burst was consumed");
    }

    #[tokio::test(start_paused = true)]
    async fn continuous_events_still_report_after_max_wait() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            // An event every 50 ms, forever: never quiet for 200 ms.
            while tx.send(()).is_ok() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let start = Instant::now();
        debounce(&mut rx, Duration::from_millis(200), Duration::from_secs(1))
            .await
            .unwrap();
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(1) && waited < Duration::from_millis(1100),
            "{waited:?}"
        );
    }
}
