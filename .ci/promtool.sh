#!/usr/bin/env bash
# resetd as Prometheus's own tool sees it:
#  - the alerting kit: `promtool check rules` on the rules file and
#    `promtool test rules` on its unit tests (a case that fails, fails CI);
#  - /metrics: a daemon (dry run on the bundled example) is scraped the way
#    curl does (no Accept header), the Content-Type must say Prometheus text
#    0.0.4, and `promtool check metrics` must pass on the body (exit 0: no
#    format error, no lint problem).
set -euo pipefail
# shellcheck disable=SC2317 # functions called through deadline_loop
cd "$(dirname "$0")/.."
source .ci/lib.sh
# promtool ships in Debian's prometheus package (no separate package).
need promtool prometheus

echo "promtool check rules, test rules: examples/prometheus"
promtool check rules examples/prometheus/resetd-alerts.yaml
promtool test rules examples/prometheus/resetd-alerts.test.yaml

cargo build --locked -q --bin resetd
work=$(mktemp -d)
daemon_pid=''
trap 'stop_daemon; rm -rf "$work"' EXIT
start_daemon "$work/log" target/debug/resetd run --dry-run --resync 1h --listen 127.0.0.1:0 \
  --config examples/resets.yaml --status "$work/resets.status.yaml"
# The gauges are filled at the end of the first pass.
first_pass() { get /metrics | grep -q '^resetd_last_reconcile_timestamp_seconds [1-9]'; }
deadline_loop 60 "first pass" first_pass

get /metrics > "$work/response"
content_type=$(grep -i -m1 '^content-type:' "$work/response" | tr -d '\r' | cut -d' ' -f2-)
if [ "$content_type" != "text/plain; version=0.0.4; charset=utf-8" ]; then
  echo "/metrics without Accept is served as '$content_type'" >&2
  exit 1
fi
body < "$work/response" > "$work/metrics"
promtool check metrics < "$work/metrics"
echo "promtool check metrics: ok ($(grep -c '^# TYPE' "$work/metrics") metrics)"
