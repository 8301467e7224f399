//! A fake IPRoyal API: real HTTP/1.1 on 127.0.0.1, an ephemeral port, a
//! thread per connection. It records every request and answers from a script
//! (default 204), so tests can inject 429/5xx, delays, dropped connections and
//! requests held open until released.
//!
//! It also serves the account's sub-users (`GET /v1/residential-subusers`,
//! paged, with passwords and traffic as the real API does) and `GET /v1/me`.
//!
//! Shared by the integration tests and `cargo run --example mock_api`.

#![allow(dead_code)] // each user calls a different part

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How to answer one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Status code with an empty body.
    Status(u16),
    /// Status code with a JSON body.
    Json(u16, String),
    /// 429 or 503 with a `Retry-After` header value.
    RetryAfter(u16, String),
    /// A 3xx with this `Location`.
    Redirect(u16, String),
    /// Wait, then answer.
    Delay(Duration, Box<Reply>),
    /// Close the connection without answering.
    Drop,
    /// Send the status line and part of the headers, then close.
    DropMidResponse,
    /// Send a complete head announcing a body, part of the body, then close.
    DropMidBody,
    /// Keep the request open until `release_held` (or the server ends).
    Hold,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// `residential_user_hashes`, when the body had the documented shape.
    pub hashes: Option<Vec<String>>,
    pub received: Instant,
    /// The status code fully written back to the client; `None` while held,
    /// or when the connection was dropped.
    pub answered: Option<u16>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Hashes of a well-formed request (panics otherwise: a test failure).
    pub fn sent(&self) -> &[String] {
        self.hashes
            .as_deref()
            .expect("body has residential_user_hashes")
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    /// Used when the script is empty.
    default: Option<Reply>,
    /// Fraction of requests answered 429/500 at random (fault injection).
    fail_rate: f64,
    rng: u64,
    requests: Vec<Recorded>,
    released: bool,
    /// The account's sub-users: (username, hash).
    subusers: Vec<(String, String)>,
    /// The account's own `residential_user_hash`.
    own_hash: String,
    /// Replies for the next GETs, before the account data is served.
    get_script: VecDeque<Reply>,
    /// A notification receiver (`FakeApi::receiver`): any other request
    /// is answered from the script too, instead of refused.
    any_request: bool,
}

/// The password the fake puts in every sub-user record: it must never leave
/// resetd.
pub const SUBUSER_PASSWORD: &str = "pw-SUBUSER-9f3e1c77ab";

pub struct FakeApi {
    addr: SocketAddr,
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl FakeApi {
    /// Listen on 127.0.0.1 on an ephemeral port.
    pub fn start() -> FakeApi {
        Self::start_on("127.0.0.1:0")
    }

    /// A notification receiver: every request (any method, any path) is
    /// recorded and answered from the script (default 204).
    pub fn receiver() -> FakeApi {
        let fake = Self::start();
        fake.lock().any_request = true;
        fake
    }

    pub fn start_on(addr: &str) -> FakeApi {
        let listener = TcpListener::bind(addr).expect("bind fake API");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new((
            Mutex::new(State {
                rng: 0x2545_F491_4F6C_DD1D,
                ..State::default()
            }),
            Condvar::new(),
        ));
        let accept_shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&accept_shared);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        FakeApi { addr, shared }
    }

    /// The API base to give resetd (`--api-base`).
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answer the next requests with these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.lock().script.extend(replies);
        self
    }

    /// Answer with this when the script is empty (default: 204).
    pub fn default_reply(&self, reply: Reply) -> &Self {
        self.lock().default = Some(reply);
        self
    }

    /// Answer this fraction of unscripted requests with 429 or 500.
    pub fn fail_rate(&self, rate: f64) -> &Self {
        self.lock().fail_rate = rate;
        self
    }

    /// The account's sub-users, as (username, hash).
    pub fn subusers(&self, users: impl IntoIterator<Item = (String, String)>) -> &Self {
        self.lock().subusers = users.into_iter().collect();
        self
    }

    /// Add one sub-user to the account.
    pub fn add_subuser(&self, username: &str, hash: &str) -> &Self {
        self.lock()
            .subusers
            .push((username.to_owned(), hash.to_owned()));
        self
    }

    /// The account's own hash (`GET /v1/me`).
    pub fn own_hash(&self, hash: &str) -> &Self {
        hash.clone_into(&mut self.lock().own_hash);
        self
    }

    /// Answer the next GETs with these replies, in order.
    pub fn script_gets(&self, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.lock().get_script.extend(replies);
        self
    }

    /// Let every held request answer 204.
    pub fn release_held(&self) {
        self.lock().released = true;
        self.shared.1.notify_all();
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The hash lists of the DELETEs received, in order.
    pub fn deletes(&self) -> Vec<Vec<String>> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method == "DELETE")
            .filter_map(|r| r.hashes.clone())
            .collect()
    }

    /// Wait until `done(requests)` holds; panics after `deadline`.
    pub fn wait_until(
        &self,
        deadline: Duration,
        what: &str,
        done: impl Fn(&[Recorded]) -> bool,
    ) -> Vec<Recorded> {
        let end = Instant::now() + deadline;
        let (lock, cond) = &*self.shared;
        let mut state = lock.lock().expect("fake API lock");
        loop {
            if done(&state.requests) {
                return state.requests.clone();
            }
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out after {deadline:?} waiting for {what}; requests: {:#?}",
                state.requests
            );
            state = cond.wait_timeout(state, left).expect("fake API lock").0;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.0.lock().expect("fake API lock")
    }
}

fn serve(stream: TcpStream, shared: &Arc<(Mutex<State>, Condvar)>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    // Keep-alive: one connection may carry many requests.
    while let Some((method, path, headers, body)) = read_request(&mut reader) {
        let hashes = parse_body(&body);
        let (index, reply) = {
            let (lock, cond) = &**shared;
            let mut state = lock.lock().expect("fake API lock");
            let reply = if state.any_request {
                state
                    .script
                    .pop_front()
                    .or_else(|| state.default.clone())
                    .unwrap_or(Reply::Status(204))
            } else if method == "GET" {
                match state.get_script.pop_front() {
                    Some(r) => r,
                    None => account_reply(&state, &path),
                }
            } else if hashes.is_none() || method != "DELETE" || path != "/v1/sessions" {
                Reply::Json(
                    422,
                    r#"{"message":"expected DELETE /v1/sessions with residential_user_hashes"}"#
                        .into(),
                )
            } else if let Some(r) = state.script.pop_front() {
                r
            } else if state.fail_rate > 0.0 && next_random(&mut state.rng) < state.fail_rate {
                if next_random(&mut state.rng) < 0.5 {
                    Reply::RetryAfter(429, "0".into())
                } else {
                    Reply::Status(500)
                }
            } else {
                state.default.clone().unwrap_or(Reply::Status(204))
            };
            state.requests.push(Recorded {
                method,
                path,
                headers,
                body,
                hashes,
                received: Instant::now(),
                answered: None,
            });
            cond.notify_all();
            (state.requests.len() - 1, reply)
        };
        match answer(&mut writer, reply, shared) {
            Some(code) => {
                let (lock, cond) = &**shared;
                lock.lock().expect("fake API lock").requests[index].answered = Some(code);
                cond.notify_all();
            }
            None => return,
        }
    }
}

/// Write the reply; the code written, or `None` when the connection was closed.
fn answer(
    writer: &mut TcpStream,
    reply: Reply,
    shared: &Arc<(Mutex<State>, Condvar)>,
) -> Option<u16> {
    let (code, body, extra) = match reply {
        Reply::Status(code) => (code, String::new(), String::new()),
        Reply::Json(code, body) => (code, body, String::new()),
        Reply::RetryAfter(code, after) => {
            (code, String::new(), format!("Retry-After: {after}\r\n"))
        }
        Reply::Redirect(code, location) => {
            (code, String::new(), format!("Location: {location}\r\n"))
        }
        Reply::Delay(d, inner) => {
            std::thread::sleep(d);
            return answer(writer, *inner, shared);
        }
        Reply::Drop => {
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return None;
        }
        Reply::DropMidResponse => {
            let _ = writer.write_all(b"HTTP/1.1 204 No Content\r\nContent-Le");
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return None;
        }
        Reply::DropMidBody => {
            let _ = writer.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mess",
            );
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return None;
        }
        Reply::Hold => {
            let (lock, cond) = &**shared;
            let mut state = lock.lock().expect("fake API lock");
            while !state.released {
                state = cond.wait(state).expect("fake API lock");
            }
            (204, String::new(), String::new())
        }
    };
    let reason = match code {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\n{content_type}{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    // One write: a head and a body in two segments would wait out the
    // client's delayed ACK (40 ms a request).
    writer.write_all(format!("{head}{body}").as_bytes()).ok()?;
    writer.flush().ok()?;
    Some(code)
}

type Request = (String, String, Vec<(String, String)>, String);

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((
        method,
        path,
        headers,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

/// The account `examples/mock_api.rs` serves: its sub-users, as (username,
/// hash), and its own hash. README's round trip uses them.
pub fn demo_account() -> (Vec<(String, String)>, &'static str) {
    let users = [
        ("scraper-eu-07", "01HQ5K3P97DY8EX9Y90YT1K6XA"),
        ("scraper-eu-08", "01H7YCG0R9GYY1YCPS2S4QA6WB"),
        ("scraper-us-01", "02JVRQ5BF83PTW19G1SRD955J0"),
        ("checkout-payments", "01JY9XKHHPZ984254W236K94PC"),
    ];
    (
        users
            .iter()
            .map(|(u, h)| ((*u).to_owned(), (*h).to_owned()))
            .collect(),
        "01J0WNERACC0VNT000000000AA",
    )
}

/// Sub-users are served this many per page at most, whatever is asked.
pub const MAX_PER_PAGE: usize = 100;

/// `GET /v1/residential-subusers?page=P&per_page=N` and `GET /v1/me`, with
/// the extra fields (passwords, traffic) the real API returns.
fn account_reply(state: &State, path: &str) -> Reply {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let param = |name: &str| -> Option<usize> {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse().ok())
    };
    match route {
        "/v1/residential-subusers" => {
            let per_page = param("per_page").unwrap_or(20).clamp(1, MAX_PER_PAGE);
            let page = param("page").unwrap_or(1).max(1);
            let last_page = state.subusers.len().div_ceil(per_page).max(1);
            let data: Vec<serde_json::Value> = state
                .subusers
                .iter()
                .enumerate()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|(i, (username, hash))| {
                    serde_json::json!({
                        "id": i + 1,
                        "hash": hash,
                        "username": username,
                        "password": SUBUSER_PASSWORD,
                        "traffic_available": 1.5,
                        "traffic_used": 0.25,
                    })
                })
                .collect();
            let body = serde_json::json!({
                "data": data,
                "meta": {
                    "current_page": page,
                    "from": (page - 1) * per_page + 1,
                    "last_page": last_page,
                    "path": "https://resi-api.iproyal.com/v1/residential-subusers",
                    "per_page": per_page,
                    "to": (page * per_page).min(state.subusers.len()),
                    "total": state.subusers.len(),
                },
            });
            Reply::Json(200, body.to_string())
        }
        "/v1/me" => Reply::Json(
            200,
            serde_json::json!({
                "residential_user_hash": state.own_hash,
                "username": "account-owner",
                "password": SUBUSER_PASSWORD,
                "available_traffic": 10.0,
            })
            .to_string(),
        ),
        _ => Reply::Json(404, r#"{"message":"not found"}"#.into()),
    }
}

/// The documented body: exactly `{"residential_user_hashes": [strings]}`.
fn parse_body(body: &str) -> Option<Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    object
        .get("residential_user_hashes")?
        .as_array()?
        .iter()
        .map(|h| h.as_str().map(str::to_owned))
        .collect()
}

/// xorshift64*: deterministic faults, so a failing run can be replayed.
fn next_random(state: &mut u64) -> f64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}
