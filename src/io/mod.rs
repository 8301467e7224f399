//! The shell's edges, each the only user of its crate: the IPRoyal API
//! (`api`, reqwest), the status store (`store`), the config watcher
//! (`watch`, notify), the HTTP endpoints (`serve`, axum), notifications
//! (`notify`, reqwest), metrics (`metrics`, prometheus-client), secrets,
//! the source revision (git) and logging (tracing).

pub mod api;
pub mod etcd;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod revision;
pub mod secret;
pub mod serve;
pub mod store;
pub mod watch;
