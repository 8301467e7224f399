//! The functional core: no I/O beyond reading a config file, no clock (time
//! is passed in), no async; never imports reqwest, notify, axum or tokio.
//! Config types, YAML reading and the schema; the planner (config, status
//! and now give a plan), the schedule, the retry policy, the status
//! transitions, sub-user resolution, and rendering plans and statuses.

pub mod config;
pub mod diagnostic;
pub mod digest;
pub mod plan;
pub mod policy;
pub mod report;
pub mod schedule;
pub mod schema;
pub mod status;
pub mod users;
pub mod yaml;

/// A table of the bytes in `chars`, for scans that a lookup per byte keeps
/// branch-free (built at compile time).
pub(crate) const fn byte_set(chars: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < chars.len() {
        table[chars[i] as usize] = true;
        i += 1;
    }
    table
}
