//! When an entry's trigger is due. Pure: the time is passed in.
//!
//! # Guarantees
//! - A recurring entry that missed several slots (resetd was down) is due
//!   once, for the latest missed slot, not once per slot.
//! - `every` runs when first seen, then one interval after each run's start.
//! - `cron` runs at each matching minute (UTC) after the entry was first seen.
//! - No arithmetic here can overflow or panic, whatever the instants: a next
//!   occurrence that cannot be represented is `Never`, never "due now".

use std::cell::RefCell;
use std::collections::HashMap;

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
            let Some(last) = last_slot else {
                return Due::Now { slot: Some(now) };
            };
            // `validate` bounds the interval to 366 days, so neither step
            // fails for a slot resetd recorded itself. A slot near the end of
            // chrono's range (a hand-edited status file) has no representable
            // next run: that is `Never`, not a reason to run on every pass.
            let next = chrono::Duration::from_std(*interval)
                .ok()
                .and_then(|d| last.checked_add_signed(d));
            match next {
                Some(next) if now < next => Due::At(next),
                Some(_) => Due::Now { slot: Some(now) },
                None => Due::Never,
            }
        }
        Schedule::Cron(cron) => cron_due(around(cron, now), last_slot.unwrap_or(first_seen)),
    }
}

/// What a cron expression says around `now`: its latest occurrence at or
/// before it, and its first after it.
#[derive(Debug, Clone, Copy)]
struct Around {
    latest: Option<DateTime<Utc>>,
    next: Option<DateTime<Utc>>,
}

fn around(cron: &croner::Cron, now: DateTime<Utc>) -> Around {
    Around {
        latest: cron.find_previous_occurrence(&now, true).ok(),
        next: cron.find_next_occurrence(&now, false).ok(),
    }
}

/// `anchor`: the last slot run, or when the entry was first seen.
fn cron_due(around: Around, anchor: DateTime<Utc>) -> Due {
    match (around.latest, around.next) {
        (Some(latest), _) if latest > anchor => Due::Now { slot: Some(latest) },
        (_, Some(next)) => Due::At(next),
        (_, None) => Due::Never,
    }
}

/// `due` at one instant for many entries: what a plan asks. Every cron
/// entry asks its expression the same two questions at the same `now`, and
/// thousands of entries usually share a handful of expressions, so each
/// expression is asked once (a yearly one searches a year of minutes).
pub struct DueAt {
    now: DateTime<Utc>,
    /// By expression text (the parser's options are the same for all);
    /// asked once per entry, so hashed fast (seeded, as for the hashes).
    crons: RefCell<HashMap<String, Around, foldhash::fast::RandomState>>,
}

impl DueAt {
    pub fn new(now: DateTime<Utc>) -> DueAt {
        DueAt {
            now,
            crons: RefCell::new(HashMap::default()),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// `due(schedule, last_slot, first_seen, self.now())`.
    pub fn due(
        &self,
        schedule: &Schedule,
        last_slot: Option<DateTime<Utc>>,
        first_seen: DateTime<Utc>,
    ) -> Due {
        let Schedule::Cron(cron) = schedule else {
            return due(schedule, last_slot, first_seen, self.now);
        };
        let known = self.crons.borrow().get(cron.as_str()).copied();
        let around = known.unwrap_or_else(|| {
            let found = around(cron, self.now);
            self.crons
                .borrow_mut()
                .insert(cron.as_str().to_owned(), found);
            found
        });
        cron_due(around, last_slot.unwrap_or(first_seen))
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
        Schedule::Cron(std::sync::Arc::new(
            crate::config::parse_cron(expr).unwrap(),
        ))
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
    fn due_at_answers_as_due_whoever_asked_first() {
        let schedules = [
            cron("0 * * * *"),
            cron("0 3 1 1 *"),
            cron("0 * * * *"),
            cron("0 0 30 2 *"),
            Schedule::Every(Duration::from_secs(3600)),
            Schedule::Immediate,
            Schedule::At(t(12, 0, 0)),
        ];
        let anchors = [None, Some(t(9, 0, 0)), Some(t(11, 0, 0)), Some(t(14, 0, 0))];
        for now in [t(11, 0, 0), t(11, 30, 0), t(14, 20, 0)] {
            let at = DueAt::new(now);
            for schedule in &schedules {
                for last in anchors {
                    let first_seen = t(10, 30, 0);
                    assert_eq!(
                        at.due(schedule, last, first_seen),
                        due(schedule, last, first_seen, now),
                        "{schedule:?} {last:?} at {now}"
                    );
                }
            }
        }
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
    fn every_whose_next_run_overflows_is_never_due() {
        let max = DateTime::<Utc>::MAX_UTC;
        let year = Schedule::Every(Duration::from_secs(366 * 86_400));
        // A next slot past chrono's last instant: never, not due now.
        assert_eq!(due(&year, Some(max), max, max), Due::Never);
        assert_eq!(next_after(&year, max, max), None);
        let slot = max - chrono::Duration::days(1);
        assert_eq!(due(&year, Some(slot), slot, max), Due::Never);
        // Intervals `validate` refuses, should one reach the planner anyway.
        for secs in [u64::MAX, 300_000 * 31_557_600] {
            let huge = Schedule::Every(Duration::from_secs(secs));
            assert_eq!(
                due(&huge, Some(t(10, 0, 0)), t(9, 0, 0), t(10, 0, 1)),
                Due::Never
            );
            assert_eq!(next_after(&huge, t(10, 0, 0), t(10, 0, 1)), None);
        }
        // First sight is still due at once, even at the end of time.
        assert_eq!(due(&year, None, max, max), Due::Now { slot: Some(max) });
    }

    #[test]
    fn cron_at_the_ends_of_time_does_not_panic() {
        let hourly = cron("0 * * * *");
        for now in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            let d = due(&hourly, None, now, now);
            assert!(!matches!(d, Due::Now { .. }), "{d:?}");
            let _ = due(&hourly, Some(now), now, now);
            let _ = next_after(&hourly, now, now);
        }
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
