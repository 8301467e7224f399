//! Notification delivery (SPEC §6) against a real receiver on 127.0.0.1
//! (`FakeApi::receiver`): the wire formats of every receiver type, the HMAC
//! signature checked here with the hmac crate, retries, a receiver that never
//! answers, a full queue. Every test captures resetd's log and checks that
//! no secret (URL token, signing key, GitHub token) is in it.
//!
//! The library is driven directly: the wiring into `run` is tested with the
//! binary elsewhere.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::Mac as _;
use resetd::notify::{
    Event, EventKind, Notifier, NotifyObserver, QUEUE_CAPACITY, ReceiverKind, ReceiverSpec,
    SecretSource,
};
use serde_json::Value;

use crate::fake_api::{FakeApi, Recorded, Reply};

const URL_TOKEN: &str = "T0KEN-hook-8d1f2a77c3";
const HMAC_KEY: &str = "hmac-KEY-5b7e90c1d2e4";
const GITHUB_TOKEN: &str = "ghp_GHTOKEN0123456789abcdef";

/// Every delivery result, in order.
#[derive(Default)]
struct Results(Mutex<Vec<(String, String)>>);

impl NotifyObserver for Results {
    fn delivered(&self, receiver: &str, result: &str) {
        self.0
            .lock()
            .unwrap()
            .push((receiver.to_owned(), result.to_owned()));
    }
}

impl Results {
    fn all(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }
}

/// resetd's log lines, as the fmt subscriber writes them.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    /// Every level of resetd's own log, for this thread (the tests' tokio
    /// runtime is single-threaded, so the delivery tasks log here too).
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_env_filter("resetd=trace")
            .with_ansi(false)
            .finish();
        (logs.clone(), tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn assert_no_secret(&self) {
        assert_no_secret(&self.text());
    }
}

fn assert_no_secret(text: &str) {
    for secret in [URL_TOKEN, HMAC_KEY, GITHUB_TOKEN] {
        assert!(!text.contains(secret), "{secret} leaked into: {text}");
    }
}

fn secret_file(dir: &Path, name: &str, value: &str) -> SecretSource {
    let path = dir.join(name);
    // A trailing newline, as `echo` and Kubernetes secrets leave.
    std::fs::write(&path, format!("{value}\n")).unwrap();
    SecretSource::File(path)
}

fn event(kind: EventKind, entry: Option<&str>, source_revision: Option<&str>) -> Event {
    Event {
        kind,
        entry: entry.map(Into::into),
        revision: entry.map(|_| 7),
        phase: entry.map(|_| format!("{kind}")),
        hashes: 10,
        confirmed: 4,
        requests: 2,
        message: format!("{kind} happened"),
        started_at: Some("2026-11-23T03:00:00Z".parse().unwrap()),
        completed_at: Some("2026-11-23T03:00:02Z".parse().unwrap()),
        config_digest: Some("sha256:abcd".into()),
        source_revision: source_revision.map(Into::into),
    }
}

/// An entry's event, with a source revision.
fn entry_event(kind: EventKind) -> Event {
    match kind {
        EventKind::ConfigRejected => event(kind, None, Some("c0ffee")),
        _ => event(kind, Some("nightly-eu"), Some("c0ffee")),
    }
}

const ALL: [EventKind; 6] = [
    EventKind::Succeeded,
    EventKind::Failed,
    EventKind::DryRun,
    EventKind::Expired,
    EventKind::AuthError,
    EventKind::ConfigRejected,
];

fn webhook(dir: &Path, fake: &FakeApi, on: &[EventKind], signed: bool) -> ReceiverSpec {
    ReceiverSpec {
        name: "audit".into(),
        kind: ReceiverKind::Webhook {
            url: secret_file(
                dir,
                "audit-url",
                &format!("http://{}/hooks/{URL_TOKEN}", fake.addr()),
            ),
            secret: signed.then(|| secret_file(dir, "audit-key", HMAC_KEY)),
        },
        on: on.to_vec(),
    }
}

fn json(request: &Recorded) -> serde_json::Map<String, Value> {
    match serde_json::from_str(&request.body).unwrap() {
        Value::Object(map) => map,
        other => panic!("not a JSON object: {other}"),
    }
}

#[tokio::test]
async fn every_event_reaches_a_signed_webhook_with_its_fields() {
    let (logs, _guard) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeApi::receiver();
    let results = Arc::new(Results::default());
    let notifier = Notifier::start(
        vec![webhook(dir.path(), &fake, &ALL, true)],
        results.clone(),
    )
    .unwrap();
    for kind in ALL {
        notifier.send(entry_event(kind));
    }
    assert_eq!(notifier.drain(Duration::from_secs(10)).await, 0);

    let requests = fake.requests();
    assert_eq!(requests.len(), ALL.len());
    for (request, kind) in requests.iter().zip(ALL) {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, format!("/hooks/{URL_TOKEN}"));
        let body = json(request);
        let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "completedAt",
                "configDigest",
                "confirmed",
                "entry",
                "event",
                "hashes",
                "message",
                "phase",
                "requests",
                "revision",
                "sourceRevision",
                "startedAt"
            ]
        );
        assert_eq!(body["event"], format!("{kind}"));
        let entry = if kind == EventKind::ConfigRejected {
            Value::Null
        } else {
            Value::from("nightly-eu")
        };
        assert_eq!(body["entry"], entry);
        assert_eq!(body["hashes"], 10);
        assert_eq!(body["confirmed"], 4);
        assert_eq!(body["requests"], 2);
        assert_eq!(body["message"], format!("{kind} happened"));
        assert_eq!(body["startedAt"], "2026-11-23T03:00:00Z");
        assert_eq!(body["completedAt"], "2026-11-23T03:00:02Z");
        assert_eq!(body["configDigest"], "sha256:abcd");
        assert_eq!(body["sourceRevision"], "c0ffee");

        // What a receiver does: HMAC the exact body bytes with the shared
        // key and compare in constant time.
        let header = request.header("X-Resetd-Signature").unwrap();
        let hex = header.strip_prefix("sha256=").unwrap();
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
        let signature: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(HMAC_KEY.as_bytes()).unwrap();
        mac.update(request.body.as_bytes());
        mac.verify_slice(&signature)
            .expect("the signature verifies with the key");
    }
    assert_eq!(results.all(), vec![("audit".into(), "ok".into()); 6]);
    assert_no_secret(&format!("{notifier:?}"));
    logs.assert_no_secret();
}

#[tokio::test]
async fn an_unsigned_webhook_has_no_signature_and_on_filters_events() {
    let (logs, _guard) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeApi::receiver();
    let notifier = Notifier::start(
        vec![webhook(dir.path(), &fake, &[EventKind::Expired], false)],
        Arc::new(Results::default()),
    )
    .unwrap();
    for kind in ALL {
        notifier.send(entry_event(kind));
    }
    assert_eq!(notifier.drain(Duration::from_secs(10)).await, 0);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "only the Expired event: {requests:#?}");
    assert_eq!(json(&requests[0])["event"], "Expired");
    assert_eq!(requests[0].header("X-Resetd-Signature"), None);
    logs.assert_no_secret();
}

#[tokio::test]
async fn slack_gets_text_naming_event_entry_and_outcome() {
    let (logs, _guard) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeApi::receiver();
    let spec = ReceiverSpec {
        name: "ops-slack".into(),
        kind: ReceiverKind::Slack {
            url: secret_file(
                dir.path(),
                "slack-url",
                &format!("http://{}/services/T000/B000/{URL_TOKEN}", fake.addr()),
            ),
        },
        on: EventKind::DEFAULT_ON.to_vec(),
    };
    let notifier = Notifier::start(vec![spec], Arc::new(Results::default())).unwrap();
    // Not in the default `on`: not sent.
    notifier.send(entry_event(EventKind::Succeeded));
    notifier.send(entry_event(EventKind::Failed));
    notifier.send(entry_event(EventKind::ConfigRejected));
    assert_eq!(notifier.drain(Duration::from_secs(10)).await, 0);

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[0].path, format!("/services/T000/B000/{URL_TOKEN}"));
    let texts: Vec<String> = requests
        .iter()
        .map(|r| {
            let body = json(r);
            assert_eq!(body.len(), 1, "only `text`: {body:?}");
            body["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        texts[0],
        "resetd *Failed* · entry `nightly-eu` (revision 7) · 4/10 hashes confirmed, 2 requests\n\
         > Failed happened\nsource revision `c0ffee`"
    );
    assert!(
        texts[1].starts_with("resetd *ConfigRejected* · the new config was refused"),
        "{}",
        texts[1]
    );
    logs.assert_no_secret();
}

#[tokio::test]
async fn github_statuses_for_a_revision_and_none_without_one() {
    let (logs, _guard) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeApi::receiver();
    let spec = ReceiverSpec {
        name: "commit-status".into(),
        kind: ReceiverKind::Github {
            repository: "acme/proxy-ops".into(),
            token: secret_file(dir.path(), "gh-token", GITHUB_TOKEN),
            api_base: format!("http://{}/gh", fake.addr()),
        },
        on: ALL.to_vec(),
    };
    let results = Arc::new(Results::default());
    let notifier = Notifier::start(vec![spec], results.clone()).unwrap();
    let sha = "4f1c2a9d0e8b7c6a5f4e3d2c1b0a99887766aabb";
    let mut long = event(EventKind::Failed, Some("nightly-eu"), Some(sha));
    long.message = "x".repeat(500);
    notifier.send(long);
    notifier.send(event(EventKind::Succeeded, Some("weekly"), Some(sha)));
    notifier.send(event(EventKind::ConfigRejected, None, Some(sha)));
    notifier.send(event(EventKind::DryRun, Some("weekly"), Some(sha)));
    // No commit to put a status on.
    notifier.send(event(EventKind::Failed, Some("nightly-eu"), None));
    assert_eq!(notifier.drain(Duration::from_secs(10)).await, 0);

    let requests = fake.requests();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    let mut seen = Vec::new();
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.path,
            format!("/gh/repos/acme/proxy-ops/statuses/{sha}")
        );
        assert_eq!(
            request.header("Authorization"),
            Some(format!("Bearer {GITHUB_TOKEN}").as_str())
        );
        assert_eq!(
            request.header("Accept"),
            Some("application/vnd.github+json")
        );
        let body = json(request);
        assert_eq!(body.len(), 3, "{body:?}");
        let description = body["description"].as_str().unwrap();
        assert!(description.chars().count() <= 140, "{description}");
        seen.push((
            body["state"].as_str().unwrap().to_owned(),
            body["context"].as_str().unwrap().to_owned(),
        ));
    }
    let expected = [
        ("failure", "resetd/nightly-eu"),
        ("success", "resetd/weekly"),
        ("error", "resetd/config"),
        ("success", "resetd/weekly"),
    ];
    assert_eq!(
        seen,
        expected.map(|(s, c)| (s.to_owned(), c.to_owned())).to_vec()
    );
    assert_eq!(results.all().len(), 4);
    logs.assert_no_secret();
}

#[tokio::test]
async fn a_503_is_retried_and_counted_once_as_ok() {
    let (logs, _guard) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeApi::receiver();
    fake.script([Reply::Status(503), Reply::RetryAfter(429, "0".into())]);
    let metrics = Arc::new(resetd::metrics::Metrics::new());
    let notifier = Notifier::start(
        vec![webhook(dir.path(), &fake, &ALL, true)],
        metrics.clone(),
    )
    .unwrap();
    notifier.send(entry_event(EventKind::Failed));
    assert_eq!(notifier.drain(Duration::from_secs(10)).await, 0);

    // The fake records an answer after writing it, so resetd may have read
    // the last one before it is recorded.
    let requests = fake.wait_until(Duration::from_secs(5), "three answers", |r| {
        r.len() >= 3 && r.iter().all(|r| r.answered.is_some())
    });
    assert_eq!(
        requests.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [Some(503), Some(429), Some(204)]
    );
    // The same signed body each time.
    assert!(requests.iter().all(|r| r.body == requests[0].body
        && r.header("X-Resetd-Signature") == requests[0].header("X-Resetd-Signature")));
    let scrape = metrics.encode();
    assert!(
        scrape.contains(r#"resetd_notifications_total{receiver="audit",result="ok"} 1"#),
        "{scrape}"
    );
    assert!(!scrape.contains(r#"result="failed""#), "{scrape}");
    assert!(logs.text().contains("retrying"), "{}", logs.text());
    logs.assert_no_secret();
}

#[tokio::test]
async fn a_400_is_not_retried_and_its_echo_of_a_secret_is_scrubbed() {
    let (logs, _guard) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeApi::receiver();
    fake.script([Reply::Json(
        400,
        format!(r#"{{"message":"no hook /hooks/{URL_TOKEN} for key {HMAC_KEY}"}}"#),
    )]);
    let results = Arc::new(Results::default());
    let notifier = Notifier::start(
        vec![webhook(dir.path(), &fake, &ALL, true)],
        results.clone(),
    )
    .unwrap();
    notifier.send(entry_event(EventKind::Failed));
    assert_eq!(notifier.drain(Duration::from_secs(10)).await, 0);

    assert_eq!(fake.requests().len(), 1);
    assert_eq!(results.all(), [("audit".to_owned(), "failed".to_owned())]);
    let text = logs.text();
    assert!(
        text.contains("notification not delivered") && text.contains("receiver=audit"),
        "{text}"
    );
    // The whole URL is the secret, so its path goes too.
    assert!(
        text.contains("HTTP 400: no hook [redacted] for key [redacted]"),
        "{text}"
    );
    logs.assert_no_secret();
}

#[tokio::test]
async fn a_receiver_that_never_answers_blocks_no_send_and_drain_keeps_its_bound() {
    let (logs, _guard) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeApi::receiver();
    fake.default_reply(Reply::Hold);
    let results = Arc::new(Results::default());
    let notifier = Notifier::start(
        vec![webhook(dir.path(), &fake, &ALL, true)],
        results.clone(),
    )
    .unwrap();
    let sent = Instant::now();
    notifier.send(entry_event(EventKind::Failed));
    // Bounds with room for a loaded CI machine; a send or drain that waited
    // on the receiver would take the 10 s request timeout at least.
    assert!(
        sent.elapsed() < Duration::from_millis(500),
        "{:?}",
        sent.elapsed()
    );

    let drained = Instant::now();
    assert_eq!(notifier.drain(Duration::from_secs(1)).await, 1);
    let waited = drained.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // It did reach the receiver, which is holding it.
    fake.wait_until(Duration::from_secs(5), "the held request", |r| r.len() == 1);
    assert!(results.all().is_empty());
    fake.release_held();
    logs.assert_no_secret();
}

#[tokio::test]
async fn a_full_queue_drops_new_events_without_blocking_and_counts_them() {
    let (logs, _guard) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeApi::receiver();
    fake.default_reply(Reply::Hold);
    let results = Arc::new(Results::default());
    let notifier = Notifier::start(
        vec![webhook(dir.path(), &fake, &ALL, false)],
        results.clone(),
    )
    .unwrap();
    let sent = Instant::now();
    let total = QUEUE_CAPACITY + 3;
    for _ in 0..total {
        notifier.send(entry_event(EventKind::Failed));
    }
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    let pending = notifier.drain(Duration::ZERO).await;
    let dropped = results
        .all()
        .iter()
        .filter(|(r, result)| r == "audit" && result == "dropped")
        .count();
    assert!(dropped >= 1, "nothing dropped");
    assert_eq!(pending + dropped, total);
    assert!(
        logs.text().contains("queue of 10000 is full"),
        "{}",
        logs.text()
    );
    fake.release_held();
    logs.assert_no_secret();
}

#[tokio::test]
async fn start_errors_name_the_receiver_and_the_source_never_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeApi::receiver();
    let observer = || -> Arc<dyn NotifyObserver> { Arc::new(Results::default()) };

    let bad_url = ReceiverSpec {
        name: "ops-slack".into(),
        kind: ReceiverKind::Slack {
            url: secret_file(dir.path(), "slack-url", &format!("hooks/{URL_TOKEN}")),
        },
        on: ALL.to_vec(),
    };
    let error = Notifier::start(vec![bad_url], observer())
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!(
            "notification receiver `ops-slack`: the URL from file {} is not an http(s) URL",
            dir.path().join("slack-url").display()
        )
    );

    let unset = ReceiverSpec {
        name: "audit".into(),
        kind: ReceiverKind::Webhook {
            url: secret_file(dir.path(), "audit-url", &format!("http://{}/", fake.addr())),
            secret: Some(SecretSource::Env("RESETD_TEST_UNSET_HMAC_KEY_0b9".into())),
        },
        on: ALL.to_vec(),
    };
    let error = Notifier::start(vec![unset], observer())
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "notification receiver `audit`: env RESETD_TEST_UNSET_HMAC_KEY_0b9 is unset or empty"
    );

    let bad_token = ReceiverSpec {
        name: "commit-status".into(),
        kind: ReceiverKind::Github {
            repository: "acme/proxy-ops".into(),
            token: secret_file(dir.path(), "gh", &format!("{GITHUB_TOKEN}\u{7}x")),
            api_base: resetd::notify::GITHUB_API_BASE.into(),
        },
        on: ALL.to_vec(),
    };
    let error = Notifier::start(vec![bad_token], observer())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("cannot be sent as an HTTP header"),
        "{error}"
    );
    assert_no_secret(&error);

    let bad_repository = ReceiverSpec {
        name: "commit-status".into(),
        kind: ReceiverKind::Github {
            repository: "acme".into(),
            token: secret_file(dir.path(), "gh", GITHUB_TOKEN),
            api_base: resetd::notify::GITHUB_API_BASE.into(),
        },
        on: ALL.to_vec(),
    };
    let error = Notifier::start(vec![bad_repository], observer())
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "notification receiver `commit-status`: repository `acme` is not `owner/name`"
    );
}

#[tokio::test]
async fn a_disabled_notifier_sends_nothing_and_drains_at_once() {
    let notifier = Notifier::disabled();
    notifier.send(entry_event(EventKind::Failed));
    assert_eq!(notifier.drain(Duration::from_secs(10)).await, 0);
    let none = Notifier::start(Vec::new(), Arc::new(Results::default())).unwrap();
    assert_eq!(none.drain(Duration::from_secs(10)).await, 0);
}

#[tokio::test]
async fn a_redirect_is_not_followed_nor_retried() {
    let (logs, _guard) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeApi::receiver();
    fake.script([Reply::Redirect(307, "/elsewhere".into())]);
    let results = Arc::new(Results::default());
    let notifier = Notifier::start(
        vec![webhook(dir.path(), &fake, &ALL, true)],
        results.clone(),
    )
    .unwrap();
    notifier.send(entry_event(EventKind::Failed));
    assert_eq!(notifier.drain(Duration::from_secs(10)).await, 0);
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, [format!("/hooks/{URL_TOKEN}")]);
    assert_eq!(results.all(), [("audit".to_owned(), "failed".to_owned())]);
    assert!(logs.text().contains("redirects are never followed"));
    logs.assert_no_secret();
}
