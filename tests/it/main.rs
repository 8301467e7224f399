//! The one integration-test binary: real processes, real files, real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod alerts;
mod crash_loop;
mod daemon;
mod day3;
mod dirs;
mod dirs_review;
mod exact;
mod exits;
mod fake_api;
mod faults;
mod fuzz;
mod ha;
mod ha_examples;
mod ha_review;
mod hostile;
mod notifications;
mod notify;
mod ops;
mod plan_cmd;
mod plan_props;
mod readme;
mod revision;
mod run_once;
mod subusers;
mod support;
mod validate;
mod yaml_suite;
