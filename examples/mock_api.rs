//! A local stand-in for the IPRoyal API, for trying resetd end to end.
//!
//! `cargo run --example mock_api -- [ADDR] [FAIL_RATE]` (default
//! 127.0.0.1:8089, 0): answers `DELETE /v1/sessions` with 204, or with 429/500
//! for FAIL_RATE of requests, serves a small account's sub-users
//! (`GET /v1/residential-subusers`, with passwords, as the real API does) and
//! `GET /v1/me`, and prints every request it receives.

#![allow(clippy::expect_used)] // a demo server: failing to bind is fatal

#[path = "../tests/it/fake_api.rs"]
mod fake_api;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8089".into());
    let fail_rate: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0.0);
    let api = fake_api::FakeApi::start_on(&addr);
    api.fail_rate(fail_rate);
    let (users, own) = fake_api::demo_account();
    api.subusers(users).own_hash(own);
    println!(
        "mock IPRoyal API on {} (use --api-base {})",
        api.addr(),
        api.base()
    );
    let mut seen = 0;
    loop {
        let requests = api.wait_until(
            std::time::Duration::from_secs(365 * 86_400),
            "requests",
            |r| r.len() > seen,
        );
        for r in &requests[seen..] {
            let hashes = r.hashes.as_ref().map_or(0, Vec::len);
            let auth = if r
                .header("authorization")
                .is_some_and(|a| a.starts_with("Bearer "))
            {
                "bearer token present"
            } else {
                "NO bearer token"
            };
            println!("{} {} — {hashes} hash(es), {auth}", r.method, r.path);
        }
        seen = requests.len();
    }
}
