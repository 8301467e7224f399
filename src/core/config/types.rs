//! The config file's types: the single source of truth for its format.
//!
//! serde reads them, schemars turns them (and their doc comments) into
//! `schema/resetd.schema.json`, and the validator checks files against that
//! schema. Patterns and bounds live here as attributes, never restated
//! elsewhere.
//!
//! Invariant: values of these types are only built by deserializing a document
//! that already passed the generated schema, so the newtypes' patterns hold.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pattern of reset ids and group names.
pub const NAME_PATTERN: &str = r"^[a-z0-9][a-z0-9._-]{0,62}$";
/// Pattern of a residential user hash (opaque to resetd).
pub const HASH_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$";
/// Pattern of a sub-user's username (SPEC §2a): 1 to 128 characters, no
/// whitespace or control characters (`users::nameable` is the same rule).
/// The length is a separate `maxLength`: a bounded repeat of a Unicode class
/// compiles into a regex many megabytes large, at every start.
pub const USERNAME_PATTERN: &str = r"^[^\s\x00-\x1F\x7F-\x9F]+$";

const DAY: u64 = 86_400;

/// `every`: at least a second (shorter intervals would fire on every pass),
/// at most 366 days (a yearly reset in a leap year; it also keeps
/// `slot + every` far inside chrono's range).
pub const EVERY: DurationRange = DurationRange {
    min: std::time::Duration::from_secs(1),
    max: std::time::Duration::from_secs(366 * DAY),
};
/// `settings.requestTimeout`: below 100ms no call over the internet completes;
/// above ten minutes a hung connection stalls every entry queued behind it.
pub const REQUEST_TIMEOUT: DurationRange = DurationRange {
    min: std::time::Duration::from_millis(100),
    max: std::time::Duration::from_secs(600),
};
/// `settings.retryDelay`: at most the backoff cap, since any longer delay
/// would be cut to the cap anyway; at least 1ms, so that it is a delay
/// (`maxAttempts` bounds how many retries there are).
pub const RETRY_DELAY: DurationRange = DurationRange {
    min: std::time::Duration::from_millis(1),
    max: crate::policy::MAX_DELAY,
};
/// `settings.retryFailedFor`: 0 turns automatic retries of failed entries
/// off; at most as long as the longest `every`, beyond which a retry is a
/// surprise rather than a recovery.
pub const RETRY_FAILED_FOR: DurationRange = DurationRange {
    min: std::time::Duration::ZERO,
    max: std::time::Duration::from_secs(366 * DAY),
};
/// `at` and `notAfter`: 2000-01-01T00:00:00Z to 9999-12-31T23:59:59Z (in
/// UTC, after the offset is applied). Earlier is a typo; later cannot be
/// written back to the status file with RFC 3339's four-digit years.
pub const INSTANTS: InstantRange = InstantRange {
    min_unix: 946_684_800,
    max_unix: 253_402_300_799,
};
/// `revision`: the largest integer that JSON tools (editors validating
/// against the schema) represent exactly, 2^53 - 1.
/// The slowest rate limit other than none (one request in 1,000 s).
pub const MIN_REQUESTS_PER_SECOND: f64 = 0.001;

pub const MAX_REVISION: u64 = (1 << 53) - 1;

/// An inclusive range of durations, enforced by `validate` and stated in the
/// schema's descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    pub min: std::time::Duration,
    pub max: std::time::Duration,
}

impl DurationRange {
    pub fn contains(&self, d: std::time::Duration) -> bool {
        (self.min..=self.max).contains(&d)
    }

    /// `text` followed by the range, for a schema description.
    pub fn describe(&self, text: &str) -> String {
        format!(
            "{text} From {} to {}, inclusive.",
            short_duration(self.min),
            short_duration(self.max)
        )
    }
}

/// A duration in the largest unit that divides it (`366d`, `10m`, `10ms`),
/// in a form `validate` itself accepts.
pub fn short_duration(d: std::time::Duration) -> String {
    if d.subsec_nanos() == 0 {
        let secs = d.as_secs();
        for (unit, name) in [(DAY, "d"), (3600, "h"), (60, "m")] {
            if secs > 0 && secs.is_multiple_of(unit) {
                return format!("{}{name}", secs / unit);
            }
        }
        format!("{secs}s")
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// An inclusive range of instants, as Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstantRange {
    pub min_unix: i64,
    pub max_unix: i64,
}

impl InstantRange {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        (self.min_unix..=self.max_unix).contains(&t.timestamp())
    }

    pub fn min(&self) -> String {
        Self::format(self.min_unix)
    }

    pub fn max(&self) -> String {
        Self::format(self.max_unix)
    }

    fn format(unix: i64) -> String {
        DateTime::<Utc>::from_timestamp(unix, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    }

    /// `text` followed by the range, for a schema description.
    pub fn describe(&self, text: &str) -> String {
        format!("{text} From {} to {}.", self.min(), self.max())
    }
}

/// A file of IPRoyal residential session resets, reconciled by resetd.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "resetd SessionResets")]
pub struct Document {
    /// Format version of this file.
    pub api_version: ApiVersion,
    /// Kind of document.
    pub kind: Kind,
    /// Settings for every entry in this file.
    #[serde(default)]
    pub settings: Settings,
    /// Named groups of residential user hashes, referenced by resets.
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "pattern": NAME_PATTERN }))]
    pub groups: BTreeMap<String, Group>,
    /// The resets to reconcile. Each is keyed by its `id`.
    #[serde(default)]
    pub resets: Vec<Reset>,
    /// Who is told when a reset succeeds, fails, expires, when the API
    /// refuses the token, or when the daemon rejects a new config. The
    /// secrets (webhook URLs, signing keys, tokens) stay out of this file:
    /// each is named by `{env: NAME}` or `{file: PATH}`.
    #[serde(default)]
    pub notifications: Vec<Notification>,
}

/// A receiver of notifications.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notification {
    /// Unique name of the receiver, used in logs and metrics.
    pub name: Name,
    /// `slack` (an incoming webhook), `webhook` (a signed JSON POST) or
    /// `github` (a commit status on the config's source revision).
    #[serde(rename = "type")]
    pub kind: ReceiverType,
    /// Where the receiver's URL is read from (`slack`, `webhook`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_from: Option<SecretFrom>,
    /// Where the HMAC-SHA256 signing key is read from (`webhook`, optional):
    /// the body is signed in `X-Resetd-Signature: sha256=<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_from: Option<SecretFrom>,
    /// Where the GitHub token is read from (`github`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_from: Option<SecretFrom>,
    /// `owner/name` of the repository the config lives in (`github`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<Repository>,
    /// GitHub API base URL (`github`, optional; default https://api.github.com).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base: Option<HttpUrl>,
    /// The events sent to this receiver; default `[Failed, Expired,
    /// AuthError, ConfigRejected]`.
    #[serde(default = "default_events")]
    pub on: Vec<EventKind>,
}

fn default_events() -> Vec<EventKind> {
    EventKind::DEFAULT_ON.to_vec()
}

/// The kind of a notification receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReceiverType {
    Slack,
    Webhook,
    Github,
}

/// What a notification is about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
pub enum EventKind {
    /// A reset run succeeded.
    Succeeded,
    /// A reset run failed.
    Failed,
    /// A dry run recorded what it would send.
    DryRun,
    /// An entry was first seen due after its `notAfter`, and never runs.
    Expired,
    /// The API refused the token (401/403).
    AuthError,
    /// The daemon refused a new config and runs the last good one.
    ConfigRejected,
}

impl EventKind {
    /// A receiver's `on:` when the config leaves it out: what needs a person.
    pub const DEFAULT_ON: [EventKind; 4] = [
        EventKind::Failed,
        EventKind::Expired,
        EventKind::AuthError,
        EventKind::ConfigRejected,
    ];
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Where a secret is read from, when resetd starts: an environment variable
/// or a file (a mounted secret). `validate` never reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum SecretFrom {
    /// An environment variable's name.
    Env(#[schemars(pattern(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"))] String),
    /// A file's path; a trailing newline is trimmed.
    File(#[schemars(length(min = 1, max = 4096))] String),
}

/// A GitHub repository, `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Repository(
    #[schemars(pattern(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$"))] pub String,
);

/// An `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct HttpUrl(
    #[schemars(pattern(r"^https?://\S+$"), length(max = 2000))]
    pub String,
);

/// Format version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "resetd/v1")]
    V1,
}

/// Kind of document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Kind {
    SessionResets,
}

/// Settings for every entry in this file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Settings {
    /// When true, nothing in this file calls the API; resetd only records what it would do.
    pub dry_run: bool,
    /// Largest number of hashes sent in one DELETE call.
    #[schemars(range(min = 1, max = 10000))]
    pub batch_size: u32,
    /// Attempts per batch, retries included, before the entry is marked Failed.
    #[schemars(range(min = 1, max = 100))]
    pub max_attempts: u32,
    /// Time limit of one API request, e.g. `30s` or `1m 30s`; bounded by
    /// [`REQUEST_TIMEOUT`].
    #[schemars(description = REQUEST_TIMEOUT.describe(
        "Time limit of one API request, e.g. `30s` or `1m 30s`."
    ))]
    pub request_timeout: Duration,
    /// Rate limit for API requests across all entries, a number: 0.5 means
    /// one request every 2 s; 0 means no limit. At most 10000; below
    /// 0.001 (one request in ~17 minutes) only 0 is allowed.
    #[schemars(range(min = 0, max = 10000))]
    pub max_requests_per_second: f64,
    /// Delay before the first retry of a failed request; it doubles with each
    /// attempt, up to 30s, with jitter. A `Retry-After` answer overrides it.
    /// Bounded by [`RETRY_DELAY`].
    #[schemars(description = RETRY_DELAY.describe(
        "Delay before the first retry of a failed request; it doubles with each \
         attempt, up to 30s, with jitter. A `Retry-After` answer overrides it."
    ))]
    pub retry_delay: Duration,
    /// How long an entry that failed for a passing reason (the API away,
    /// overloaded or refusing the token) is retried on its own, counted from
    /// its first failure; retries back off from 1 minute to 1 hour and never
    /// go past the entry's `notAfter`. `0s` turns them off. Bounded by
    /// [`RETRY_FAILED_FOR`].
    #[schemars(description = RETRY_FAILED_FOR.describe(
        "How long an entry that failed for a passing reason (the API away, overloaded or \
         refusing the token) is retried on its own, counted from its first failure; retries \
         back off from 1 minute to 1 hour and never go past the entry's `notAfter`. `0s` \
         turns them off."
    ))]
    pub retry_failed_for: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dry_run: false,
            batch_size: 100,
            max_attempts: 5,
            request_timeout: Duration("30s".into()),
            max_requests_per_second: 5.0,
            retry_delay: Duration("200ms".into()),
            retry_failed_for: Duration("24h".into()),
        }
    }
}

/// A named group of residential user hashes.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Group {
    /// What the group is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Residential user hashes in this group.
    #[serde(default)]
    pub hashes: Vec<Hash>,
    /// IPRoyal sub-users in this group, by username: resetd looks up their
    /// hashes (`resetd subusers` lists them). After `hashes`, before `include`.
    #[serde(default)]
    pub users: Vec<Username>,
    /// Other groups whose hashes belong to this one too (no cycles).
    #[serde(default)]
    pub include: Vec<Name>,
}

/// One reset: the hashes whose sessions are reset, and when.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reset {
    /// Unique, stable key of this entry; its status is kept under this id.
    pub id: Name,
    /// Why this reset exists (a ticket reference helps the on-call engineer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Groups whose hashes are reset.
    #[serde(default)]
    pub groups: Vec<Name>,
    /// Hashes reset in addition to the groups' hashes.
    #[serde(default)]
    pub hashes: Vec<Hash>,
    /// IPRoyal sub-users reset in addition, by username: resetd looks up
    /// their hashes before the run. An unknown username fails the entry
    /// before any of its requests.
    #[serde(default)]
    pub users: Vec<Username>,
    /// When the reset runs. `immediate` (the default) runs once per revision.
    #[serde(default)]
    pub trigger: Trigger,
    /// Bump to run a one-shot entry (`immediate`, `at`) again.
    #[serde(default)]
    #[schemars(range(max = MAX_REVISION))]
    pub revision: u64,
    /// If the entry is first seen due after this instant, it is marked Expired
    /// and never run. Bounded by [`INSTANTS`].
    #[schemars(description = INSTANTS.describe(
        "If the entry is first seen due after this instant, it is marked Expired and never run."
    ))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<DateTime<Utc>>,
    /// Keep the entry but do not run it while true.
    #[serde(default)]
    pub suspend: bool,
    /// Record what would be sent for this entry without calling the API.
    #[serde(default)]
    pub dry_run: bool,
}

/// When a reset runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Trigger {
    /// Run once per revision, as soon as the entry is seen.
    #[default]
    Immediate,
    /// Run once per revision, not before this instant (RFC 3339); bounded by
    /// [`INSTANTS`].
    #[schemars(description = INSTANTS.describe(
        "Run once per revision, not before this instant (RFC 3339)."
    ))]
    At(DateTime<Utc>),
    /// Run at each minute matching this 5-field cron expression (UTC), e.g. `0 3 * * *`.
    Cron(CronExpr),
    /// Run when first seen, then one interval after each run's start, e.g.
    /// `6h`; bounded by [`EVERY`].
    #[schemars(description = EVERY.describe(
        "Run when first seen, then one interval after each run's start, e.g. `6h`."
    ))]
    Every(Duration),
}

/// A reset id or group name: lowercase letters, digits, `.`, `_`, `-`; at most 63 characters.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Name(#[schemars(pattern(NAME_PATTERN))] pub String);

/// An IPRoyal residential user hash, e.g. `01H7YCG0R9GYY1YCPS2S4QA6WB`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Hash(#[schemars(pattern(HASH_PATTERN))] pub String);

/// The username of an IPRoyal sub-user, e.g. `scraper-eu-07`: 1 to 128
/// characters, no whitespace or control characters.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Username(#[schemars(pattern(USERNAME_PATTERN), length(min = 1, max = 128))] pub String);

/// A duration such as `30s`, `5m`, `6h` or `1h 30m`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Duration(#[schemars(pattern(r"^\s*[0-9]"))] pub String);

/// A 5-field cron expression in UTC: minute hour day-of-month month day-of-week.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct CronExpr(pub String);

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Hash {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `pattern` of the schema, with the largest bounded repeat in it.
    #[test]
    fn no_pattern_repeats_a_class_hundreds_of_times() {
        // `[^\s]{1,2000}` compiled into a 13 MB regex at every start (the
        // validator compiles each pattern): lengths go in `maxLength`.
        let schema = crate::schema::json();
        let mut rest = schema.as_str();
        let mut checked = 0;
        while let Some(at) = rest.find("\"pattern\": \"") {
            rest = &rest[at + 12..];
            let pattern = &rest[..rest.find("\",\n").or(rest.find('"')).unwrap_or(rest.len())];
            for repeat in pattern.split('{').skip(1) {
                let bound = repeat.split('}').next().unwrap_or("");
                let max: u32 = bound.rsplit(',').next().unwrap_or("0").parse().unwrap_or(0);
                assert!(max <= 200, "{pattern}: a repeat of {max}");
            }
            checked += 1;
        }
        assert!(checked >= 5, "{checked} patterns found");
    }

    #[test]
    fn bounds_read_back_as_durations_validate_accepts() {
        for range in [EVERY, REQUEST_TIMEOUT, RETRY_DELAY, RETRY_FAILED_FOR] {
            for d in [range.min, range.max] {
                let text = short_duration(d);
                assert_eq!(humantime::parse_duration(&text), Ok(d), "{text}");
            }
        }
        assert_eq!(short_duration(EVERY.max), "366d");
        assert_eq!(short_duration(REQUEST_TIMEOUT.max), "10m");
        assert_eq!(short_duration(RETRY_DELAY.min), "1ms");
        assert_eq!(short_duration(REQUEST_TIMEOUT.min), "100ms");
        assert_eq!(INSTANTS.min(), "2000-01-01T00:00:00Z");
        assert_eq!(INSTANTS.max(), "9999-12-31T23:59:59Z");
    }
}
