//! The shell's copy of the account's sub-users (SPEC §2a), which a pass
//! resolves `users:` with.
//!
//! # Guarantees
//! - Sub-users are fetched only when a real run names users, at most once
//!   per `run --once`, and in the daemon at most once per `MAX_AGE` unless a
//!   run names a user the copy lacks (a sub-user created since is found
//!   without a restart).
//! - A failed lookup never sends a partial list: the entries with users
//!   fail for a passing reason and are retried on their own.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::api::Api;
use crate::plan::Users;
use crate::users::Directory;

/// How long the daemon trusts its copy when nothing is missing from it.
pub const MAX_AGE: Duration = Duration::from_secs(5 * 60);

pub struct SubUsers {
    cached: Option<(Arc<Directory>, Instant)>,
    max_age: Duration,
}

impl SubUsers {
    /// For `run --once`: one fetch serves the whole run.
    pub fn for_one_run() -> Self {
        SubUsers {
            cached: None,
            max_age: Duration::MAX,
        }
    }

    /// For the daemon.
    pub fn for_daemon() -> Self {
        SubUsers {
            cached: None,
            max_age: MAX_AGE,
        }
    }

    /// The sub-users a pass resolves `users:` with, given the usernames
    /// its real runs name: the copy when it is fresh and has them all,
    /// else looked up again. A failed lookup is `Users::Failed`: those
    /// entries fail for a passing reason, nothing partial is sent.
    pub async fn users(&mut self, api: &Api, wanted: &[&str]) -> Users {
        match self.directory(api, wanted).await {
            Ok(directory) => Users::Fetched(directory),
            Err(e) => {
                tracing::error!("cannot look up the account's sub-users: {e}");
                Users::Failed(e.to_string())
            }
        }
    }

    async fn directory(
        &mut self,
        api: &Api,
        wanted: &[&str],
    ) -> Result<Arc<Directory>, crate::api::ApiError> {
        if let Some((directory, fetched)) = &self.cached {
            let fresh = fetched.elapsed() < self.max_age;
            if fresh && wanted.iter().all(|name| directory.hash_of(name).is_some()) {
                return Ok(Arc::clone(directory));
            }
        }
        let users = api
            .subusers(
                crate::api::GET_TIMEOUT,
                crate::policy::RetryPolicy::for_reads(),
            )
            .await?;
        tracing::info!(subusers = users.len(), "looked up the account's sub-users");
        let directory = Arc::new(Directory::new(users, None));
        self.cached = Some((Arc::clone(&directory), Instant::now()));
        Ok(directory)
    }
}
