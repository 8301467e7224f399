#!/usr/bin/env bash
# Runs resetd's benchmarks and prints their figures. Release builds; nothing
# generated here is committed. Usage: bench/run.sh [validate]...
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --locked -q --bin resetd --examples
bin=target/release/resetd

want() { [ $# -eq 0 ] || [[ " $* " == *" $1 "* ]]; }

bench_validate() {
  target/release/examples/gen_config "$work/large.yaml" 10000 100
  echo "== validate: 10,000 entries, 1,000,000 hashes ($(du -m "$work/large.yaml" | cut -f1) MB)"
  /usr/bin/time -f "resetd validate: %e s wall, %M KiB peak RSS" "$bin" validate "$work/large.yaml" >/dev/null
}

if want validate "$@"; then bench_validate; fi

bench_reaction() {
  echo "== reaction: config save -> first DELETE, 100 edits"
  target/release/examples/bench_reaction 100 200ms
  target/release/examples/bench_reaction 100 20ms
}

if want reaction "$@"; then bench_reaction; fi

bench_fuzz() {
  local cases=${FUZZ_CASES:-50000}
  echo "== fuzz: ${cases} cases per property (config loader, status emitter)"
  PROPTEST_CASES=$cases cargo test --release --locked -q --test it fuzz 2>&1 | grep -E "test result|panicked|minimal failing"
}

if want fuzz "$@"; then bench_fuzz; fi
