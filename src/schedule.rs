//! When an entry's trigger is due. Pure: the time is passed in.
//!
//! # Guarantees
//! - A recurring entry that missed several slots (resetd was down) is due
//!   once, for the latest missed slot, not once per slot.
//! - `every` runs when first seen, then one interval after each run's start.
//! - `cron` runs at each matching minute (UTC) after the entry was first seen.

use chrono::{DateTime, Utc};

use crate::config::Schedule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Run now. `slot` is what a recurring run is for (the cron minute, or the
    /// run's own start for `every`); `None` for one-shot triggers.
    Now { slot: Option<DateTime<Utc>> },
    /// Not before this instant.
    At(DateTime<Utc>),
    /// The schedule has no future occurrence.
    Never,
}

/// `last_slot`: the slot of the last recurring run; `first_seen`: when resetd
/// first saw the entry (cron slots before it are not owed).
pub fn due(
    schedule: &Schedule,
    last_slot: Option<DateTime<Utc>>,
    first_seen: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Due {
    match schedule {
        Schedule::Immediate => Due::Now { slot: None },
        Schedule::At(t) if now >= *t => Due::Now { slot: None },
        Schedule::At(t) => Due::At(*t),
        Schedule::Every(interval) => {
            let next =
                last_slot.and_then(|s| chrono::Duration::from_std(*interval).ok().map(|d| s + d));
            match next {
                Some(next) if now < next => Due::At(next),
                _ => Due::Now { slot: Some(now) },
            }
        }
        Schedule::Cron(cron) => {
            let anchor = last_slot.unwrap_or(first_seen);
            match cron.find_previous_occurrence(&now, true) {
                Ok(latest) if latest > anchor => Due::Now { slot: Some(latest) },
                _ => match cron.find_next_occurrence(&now, false) {
                    Ok(next) => Due::At(next),
                    Err(_) => Due::Never,
                },
            }
        }
    }
}

/// When a recurring entry runs next, after a run for `slot` at `now`.
pub fn next_after(
    schedule: &Schedule,
    slot: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match due(schedule, Some(slot), slot, now) {
        Due::At(t) => Some(t),
        Due::Now { .. } | Due::Never => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::time::Duration;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, h, m, s).unwrap()
    }

    fn cron(expr: &str) -> Schedule {
        Schedule::Cron(Box::new(crate::config::parse_cron(expr).unwrap()))
    }

    #[test]
    fn every_runs_when_first_seen_then_after_each_interval() {
        let every = Schedule::Every(Duration::from_secs(3600));
        assert_eq!(
            due(&every, None, t(10, 0, 0), t(10, 0, 0)),
            Due::Now {
                slot: Some(t(10, 0, 0))
            }
        );
        assert_eq!(
            due(&every, Some(t(10, 0, 0)), t(10, 0, 0), t(10, 59, 59)),
            Due::At(t(11, 0, 0))
        );
        assert_eq!(
            due(&every, Some(t(10, 0, 0)), t(10, 0, 0), t(11, 0, 0)),
            Due::Now {
                slot: Some(t(11, 0, 0))
            }
        );
    }

    #[test]
    fn every_after_downtime_runs_once_from_now() {
        let every = Schedule::Every(Duration::from_secs(3600));
        // Down from 10:00 to 15:30: one run now, the next an hour after it.
        assert_eq!(
            due(&every, Some(t(10, 0, 0)), t(9, 0, 0), t(15, 30, 0)),
            Due::Now {
                slot: Some(t(15, 30, 0))
            }
        );
        assert_eq!(
            next_after(&every, t(15, 30, 0), t(15, 30, 5)),
            Some(t(16, 30, 0))
        );
    }

    #[test]
    fn cron_waits_for_the_first_slot_after_first_seen() {
        let nightly = cron("0 3 * * *");
        assert_eq!(
            due(&nightly, None, t(10, 0, 0), t(10, 0, 0)),
            Due::At(Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 0).unwrap())
        );
    }

    #[test]
    fn cron_missed_slots_run_once_for_the_latest() {
        let hourly = cron("0 * * * *");
        // Last ran for 10:00; down until 14:20: due once, for the 14:00 slot.
        assert_eq!(
            due(&hourly, Some(t(10, 0, 0)), t(9, 0, 0), t(14, 20, 0)),
            Due::Now {
                slot: Some(t(14, 0, 0))
            }
        );
        assert_eq!(
            due(&hourly, Some(t(14, 0, 0)), t(9, 0, 0), t(14, 20, 0)),
            Due::At(t(15, 0, 0))
        );
    }

    #[test]
    fn cron_fires_exactly_at_the_matching_minute() {
        let hourly = cron("0 * * * *");
        assert_eq!(
            due(&hourly, Some(t(10, 0, 0)), t(9, 0, 0), t(10, 59, 59)),
            Due::At(t(11, 0, 0))
        );
        assert_eq!(
            due(&hourly, Some(t(10, 0, 0)), t(9, 0, 0), t(11, 0, 0)),
            Due::Now {
                slot: Some(t(11, 0, 0))
            }
        );
    }

    #[test]
    fn at_is_due_from_its_instant_on() {
        let at = Schedule::At(t(12, 0, 0));
        assert_eq!(
            due(&at, None, t(10, 0, 0), t(11, 59, 59)),
            Due::At(t(12, 0, 0))
        );
        assert_eq!(
            due(&at, None, t(10, 0, 0), t(12, 0, 0)),
            Due::Now { slot: None }
        );
        assert_eq!(
            due(&Schedule::Immediate, None, t(10, 0, 0), t(10, 0, 0)),
            Due::Now { slot: None }
        );
    }
}
