#!/usr/bin/env bash
# The deployment examples, checked with the tools operators use on them:
#  - systemd-analyze security: the unit's exposure stays <= 2.0;
#  - systemd-analyze verify: the unit is well-formed;
#  - the unit's sandbox fits resetd: its ExecStart runs under strace against
#    the mock API (a reset, a config edit, SIGHUP, scrapes, SIGTERM), and
#    every system call is allowed by SystemCallFilter=, every socket family
#    by RestrictAddressFamilies=, no mapping is writable and executable
#    (MemoryDenyWriteExecute=). CI has no systemd to run the unit itself.
#  - README's install commands (cargo install in debug mode, reusing CI's
#    build).
# The Kubernetes manifest is parsed and its container's command line run by
# `cargo test` (tests/it/ops.rs). The Dockerfile is not built: no Docker
# engine here.
set -euo pipefail
# shellcheck disable=SC2317 # functions called through deadline_loop
cd "$(dirname "$0")/.."
source .ci/lib.sh
need systemd-analyze systemd
need strace strace

unit=examples/systemd/resetd.service
max_exposure=2.0
work=$(mktemp -d)
daemon_pid='' api_pid='' resetd_pid=''
# Under strace, the daemon is strace's child: stop resetd, then strace ends.
cleanup() {
  [ -z "$resetd_pid" ] || kill -TERM "$resetd_pid" 2>/dev/null || true
  [ -z "$daemon_pid" ] || wait "$daemon_pid" 2>/dev/null || true
  [ -z "$api_pid" ] || kill "$api_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== systemd-analyze security $unit"
exposure=$(systemd-analyze security --offline=true "$unit" 2>&1 |
  sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || { echo "no exposure level in systemd-analyze's output" >&2; exit 1; }
echo "exposure $exposure (at most $max_exposure)"
awk -v e="$exposure" -v m="$max_exposure" 'BEGIN {exit !(e <= m)}' ||
  { systemd-analyze security --offline=true "$unit" | grep -v '^✓' >&2; exit 1; }

cargo build --locked -q --bin resetd --example mock_api
bin=$PWD/target/debug/resetd

echo "== systemd-analyze verify $unit"
# verify checks that ExecStart's binary exists: point it at this build.
sed "s|/usr/local/bin/resetd|$bin|" "$unit" > "$work/resetd.service"
systemd-analyze verify "$work/resetd.service"

echo "== the unit's sandbox against what resetd does"
# Settings, continuation lines joined; `setting <Key>` prints its values.
sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$unit" > "$work/unit"
setting() { sed -n "s/^$1=//p" "$work/unit"; }
mkdir "$work/etc" "$work/state" "$work/credentials"
cp examples/minimal.yaml "$work/etc/resets.yaml"
echo "ci-token" > "$work/credentials/token"
target/debug/examples/mock_api 127.0.0.1:0 > "$work/api" &
api_pid=$!
api_base() { grep -o -m1 'api-base [^ )]*' "$work/api" | awk '{print $2}'; }
api_up() { [ -n "$(api_base)" ]; }
deadline_loop 30 "mock API" api_up
# The unit's command line, its paths mapped into $work. Word splitting is
# wanted: the unit's ExecStart has no quoted arguments.
read -r -a argv <<<"$(setting ExecStart | sed \
  -e "s|/usr/local/bin/resetd|$bin|" \
  -e "s|/etc/resetd/|$work/etc/|g" \
  -e "s|/var/lib/resetd/|$work/state/|g" \
  -e "s|\${CREDENTIALS_DIRECTORY}/|$work/credentials/|g" \
  -e "s|127.0.0.1:9090|127.0.0.1:0|")"
RESETD_API_BASE=$(api_base) start_daemon "$work/log" strace -f -qq -o "$work/trace" "${argv[@]}"
resetd_pid=$(pgrep -P "$daemon_pid" -x resetd)
sent() { grep -q '^DELETE /v1/sessions' "$work/api"; }
deadline_loop 30 "DELETE at the mock API" sent
echo "# edited" >> "$work/etc/resets.yaml"
reloads() { grep -c 'config reloaded' "$work/log" || true; }
reloaded() { [ "$(reloads)" -ge "$1" ]; }
deadline_loop 30 "reload after an edit" reloaded 1
kill -HUP "$resetd_pid"
deadline_loop 30 "reload after SIGHUP" reloaded 2
get /metrics >/dev/null
get /status >/dev/null
kill -TERM "$resetd_pid"
wait "$daemon_pid"
daemon_pid='' resetd_pid=''
grep -q 'stopped; status written' "$work/log" || { cat "$work/log" >&2; exit 1; }

# A syscall group (@name) expanded, recursively, one syscall per line.
expand() {
  local item
  for item in "$@"; do
    # shellcheck disable=SC2046 # one name per word
    case $item in
      @*) expand $(systemd-analyze syscall-filter "$item" | tail -n +2 | grep -v '#') ;;
      *) echo "$item" ;;
    esac
  done
}
: > "$work/allowed"; : > "$work/denied"
while read -r filter; do
  # shellcheck disable=SC2086 # a list of names
  case $filter in
    '~'*) expand ${filter#\~} >> "$work/denied" ;;
    *) expand $filter >> "$work/allowed" ;;
  esac
done < <(setting SystemCallFilter)
sort -u "$work/allowed" > "$work/a"; sort -u "$work/denied" > "$work/d"
comm -23 "$work/a" "$work/d" > "$work/permitted"
grep -oE '^[0-9]+ +[a-z0-9_]+\(' "$work/trace" | awk '{print $2}' | tr -d '(' | sort -u > "$work/used"
forbidden=$(comm -23 "$work/used" "$work/permitted")
[ -z "$forbidden" ] || { echo "system calls SystemCallFilter= would refuse: $forbidden" >&2; exit 1; }
families=$(grep -oE '(socket|socketpair)\(AF_[A-Z0-9]+' "$work/trace" | sed 's/.*(//' | sort -u)
for family in $families; do
  [[ " $(setting RestrictAddressFamilies) " == *" $family "* ]] ||
    { echo "socket family $family not in RestrictAddressFamilies=" >&2; exit 1; }
done
if grep -E '(mmap|mprotect)\(.*PROT_(WRITE.*PROT_EXEC|EXEC.*PROT_WRITE)' "$work/trace"; then
  echo "a writable and executable mapping: MemoryDenyWriteExecute= would refuse it" >&2
  exit 1
fi
echo "$(wc -l < "$work/used") system calls, all allowed; socket families: ${families//$'\n'/ }"

echo "== README \"Install\": its commands, cargo install in debug mode"
# The first sh block under "## Install", run line by line; `cargo install`
# gets --debug (reusing CI's build) and a scratch --root on that PATH.
block=$(awk '/^## Install/ {f = 1} f && /^```sh/ {b = 1; next} b && /^```/ {exit} b' README.md)
grep -q '^cargo install --locked --path \.' <<<"$block" || { echo "README's install block lacks cargo install: $block" >&2; exit 1; }
while read -r line; do
  line=${line%%#*}
  case $line in
    'cargo install '*) line="CARGO_TARGET_DIR=target $line --quiet --debug --root '$work/install'" ;;
  esac
  echo "\$ $line"
  PATH="$work/install/bin:$PATH" bash -euo pipefail -c "$line"
done <<<"$block"
[ -x "$work/install/bin/resetd" ] || { echo "cargo install put no resetd in its --root" >&2; exit 1; }
