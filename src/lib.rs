//! resetd: reconcile a reviewed YAML file of IPRoyal session resets.
//!
//! Three layers, one folder each (ARCHITECTURE.md has the map):
//! - `core`: the functional core — config, YAML, schema, planner,
//!   schedule, policy, status transitions, reports. No I/O but reading a
//!   config file, no clock, no async.
//! - `engine`: one reconcile pass for `run --once` and the daemon, the
//!   executor, start-up, shutdown, the daemon loop.
//! - `io`: the edges — API, status store, watcher, HTTP, notifications,
//!   metrics, secrets, logging.
//!
//! Each module is also re-exported here (`resetd::plan`, `crate::store`),
//! so a path names the module, not the folder it lives in.

pub mod cli;
pub mod commands;
pub mod core;
pub mod engine;
pub mod io;

pub use crate::core::{
    config, diagnostic, digest, plan, policy, report, schedule, schema, status, users, yaml,
};
pub use crate::engine::{config_files, daemon, directory, once, pass, reconcile, shutdown, start};
pub use crate::io::{api, etcd, logging, metrics, notify, revision, secret, serve, store, watch};
