#!/usr/bin/env bash
# resetd's benchmarks. Release builds; nothing generated here is committed.
#
#   bench/run.sh                 all benchmarks, full size (several minutes:
#                                check-jsonschema alone takes ~4 min)
#   bench/run.sh validate apply reaction idle fuzz peers   a selection
#   bench/run.sh smoke           every benchmark at a tiny size (CI)
#
# `peers` times check-jsonschema (PyPI) and ajv-cli (npm, with ajv-formats,
# --spec=draft2020) on the same file with the committed schema; they are
# installed into a scratch directory, not on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
smoke=false
if [ "${1:-}" = smoke ]; then smoke=true; shift; fi
# Smoke runs (CI) use the debug build the tests need anyway: tiny sizes do
# not need optimised code, and CI is spared a second full compile.
if $smoke; then profile=dev; dir=debug; else profile=release; dir=release; fi
cargo build --profile "$profile" --locked -q --bin resetd --examples
bin=target/$dir/resetd
examples=target/$dir/examples
export RESETD_BIN=$bin
want() { [ $# -le 1 ] && [ -z "${selection:-}" ] && return 0; [[ " ${selection} " == *" $1 "* ]]; }
selection="$*"

# size <full> <smoke>
size() { if $smoke; then echo "$2"; else echo "$1"; fi; }

bench_validate() {
  local entries; entries=$(size 10000 100)
  "$examples/gen_config" "$work/large.yaml" "$entries" 100 2>/dev/null
  echo "== validate: $entries entries x 100 hashes ($(du -m "$work/large.yaml" | cut -f1) MB)"
  /usr/bin/time -f "resetd validate: %e s wall, %M KiB peak RSS" "$bin" validate "$work/large.yaml" >/dev/null
}

bench_peers() {
  [ -f "$work/large.yaml" ] || "$examples/gen_config" "$work/large.yaml" "$(size 10000 100)" 100 2>/dev/null
  echo "== peers: the same file, the committed schema"
  python3 -m venv "$work/venv" && "$work/venv/bin/pip" install -q check-jsonschema
  (cd "$work" && npm init -y >/dev/null && npm install --silent ajv-cli ajv-formats >/dev/null)
  local out="$work/peers.txt"
  /usr/bin/time -o "$out.resetd" -f "%e %M" "$bin" validate "$work/large.yaml" >/dev/null
  /usr/bin/time -o "$out.ajv" -f "%e %M" "$work/node_modules/.bin/ajv" validate --spec=draft2020 -c ajv-formats \
    -s schema/resetd.schema.json -d "$work/large.yaml" >/dev/null
  /usr/bin/time -o "$out.cj" -f "%e %M" "$work/venv/bin/check-jsonschema" --schemafile schema/resetd.schema.json \
    "$work/large.yaml" >/dev/null
  read -r rt rm < "$out.resetd"; read -r at am < "$out.ajv"; read -r ct cm < "$out.cj"
  awk -v rt="$rt" -v rm="$rm" -v at="$at" -v am="$am" -v ct="$ct" -v cm="$cm" 'BEGIN {
    printf "resetd validate:  %6.2f s  %6.0f MB\n", rt, rm / 1024
    printf "ajv-cli:          %6.2f s  %6.0f MB   resetd is %.2fx its speed, %.0f%% of its memory\n", at, am / 1024, at / rt, 100 * rm / am
    printf "check-jsonschema: %6.2f s  %6.0f MB   resetd is %.1fx its speed, %.0f%% of its memory\n", ct, cm / 1024, ct / rt, 100 * rm / cm
  }'
}

bench_apply() {
  echo "== apply: hashes at batchSize 100 against the fake API, no rate limit"
  "$examples/bench_apply" "$(size 100000 2000)" 100
}

bench_reaction() {
  echo "== reaction: config save -> first DELETE"
  "$examples/bench_reaction" "$(size 100 5)" 200ms
  "$examples/bench_reaction" "$(size 100 5)" 20ms
}

bench_idle() {
  local secs; secs=$(size 60 2)
  echo "== idle: daemon with nothing due, ${secs} s"
  mkdir -p "$work/idle"
  printf 'apiVersion: resetd/v1\nkind: SessionResets\nresets:\n  - id: yearly\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n    trigger: {cron: "0 0 1 1 *"}\n' \
    > "$work/idle/resets.yaml"
  RESETD_LOG=warn "$bin" run --config "$work/idle/resets.yaml" --listen 127.0.0.1:0 &
  local pid=$!
  # Wait (bounded) for start-up: the status file appears once it has planned.
  for _ in $(seq 100); do [ -f "$work/idle/resets.status.yaml" ] && break; sleep 0.05; done
  local ticks; ticks=$(getconf CLK_TCK)
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  sleep "$secs"
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  local rss; rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" || true
  awk -v d=$(( (u1 - u0) + (s1 - s0) )) -v t="$ticks" -v s="$secs" -v r="$rss" 'BEGIN {
    printf "idle: %.3f s CPU over %d s (%.3f%% of one core), RSS %.1f MB\n", d / t, s, 100 * d / t / s, r / 1024 }'
}

bench_fuzz() {
  local cases=${FUZZ_CASES:-$(size 50000 500)}
  echo "== fuzz: ${cases} cases per property (config loader, status emitter)"
  PROPTEST_CASES=$cases cargo test --profile "$profile" --locked -q --test it fuzz 2>&1 | grep -E "test result|panicked|minimal failing"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sm)"
if want validate; then bench_validate; fi
if want apply; then bench_apply; fi
if want reaction; then bench_reaction; fi
if want idle; then bench_idle; fi
if want fuzz; then bench_fuzz; fi
# Peers need PyPI and npm and minutes of time: full runs only.
if ! $smoke && want peers; then bench_peers; fi
