//! The engine: one reconcile pass (`pass`) and the executor that carries a
//! plan out batch by batch (`reconcile`), what every run does before its
//! first request (`start`), the sub-user copy (`directory`), stopping
//! (`shutdown`), and the daemon's loop and reloader (`daemon`). It talks to
//! the world only through the ports in `io` and the traits in `reconcile`
//! (`Sessions`, `Clock`, `Observer`, `Control`) and `io::store`
//! (`StatusStore`).

pub mod config_files;
pub mod daemon;
pub mod directory;
pub mod once;
pub mod pass;
pub mod reconcile;
pub mod shutdown;
pub mod start;
