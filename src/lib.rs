//! resetd: reconcile a reviewed YAML file of IPRoyal session resets.
//!
//! The core (`config`, `schema`, `diagnostic`, `schedule`, `plan`, `status`,
//! `policy`, `yaml`) does no I/O and reads no clock: time is passed in. The
//! shell (`api`, `store`, `reconcile`, `start`, `shutdown`, `daemon`, `serve`,
//! `watch`, `notify`) does the I/O; `secret` keeps secrets out of its output.
//! See ARCHITECTURE.md for the module map.

pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod diagnostic;
pub mod digest;
pub mod directory;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod pass;
pub mod plan;
pub mod policy;
pub mod reconcile;
pub mod report;
pub mod revision;
pub mod schedule;
pub mod schema;
pub mod secret;
pub mod serve;
pub mod shutdown;
pub mod start;
pub mod status;
pub mod store;
pub mod users;
pub mod watch;
pub mod yaml;
