//! resetd: reconcile a reviewed YAML file of IPRoyal session resets.
//!
//! The core (`config`, `schema`, `diagnostic`) does no network I/O and holds
//! no clock: time is passed in. See ARCHITECTURE.md for the module map.

pub mod cli;
pub mod config;
pub mod diagnostic;
pub mod schema;
