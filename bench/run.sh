#!/usr/bin/env bash
# resetd's benchmarks. Release builds; nothing generated here is committed.
#
#   bench/run.sh                 all benchmarks, full size (several minutes:
#                                check-jsonschema alone takes ~4 min)
#   bench/run.sh validate scale daemon apply ha subusers reaction idle dirs fuzz peers
#                                a selection
#   bench/run.sh smoke           every benchmark at a tiny size (CI)
#
# `validate` times resetd against ajv-cli (npm, with ajv-formats,
# --spec=draft2020) on two file shapes, side by side; `peers` times
# check-jsonschema (PyPI). Both read the same file with the committed
# schema and are installed into a scratch directory, not on the machine;
# smoke runs install nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
daemon_pid=
trap '[ -z "$daemon_pid" ] || kill "$daemon_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
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

# median of the numbers given as arguments
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# now: seconds since the epoch, microseconds
now() { echo "${EPOCHREALTIME/,/.}"; }

# Daemon helpers. start_daemon <stderr file> <args...>: starts `resetd run`
# with --listen on an ephemeral port, sets $daemon_pid and $daemon_addr (from
# the "listening on" log line, which comes after the config is loaded).
start_daemon() {
  local err=$1; shift
  RESETD_LOG=info NO_COLOR=1 "$bin" run --listen 127.0.0.1:0 "$@" >/dev/null 2>"$err" &
  daemon_pid=$!
  daemon_addr=
  for _ in $(seq 600); do
    daemon_addr=$(sed 's/\x1b\[[0-9;]*m//g' "$err" | grep -o -m1 'listening on [0-9.:]*' | awk '{print $3}') || true
    [ -n "$daemon_addr" ] && return 0
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$err" >&2; return 1; }
    sleep 0.05
  done
  echo "daemon did not listen within 30 s" >&2; return 1
}
stop_daemon() { kill -TERM "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; }
# scrape: the daemon's /metrics (bash /dev/tcp: no curl needed).
scrape() {
  local host=${daemon_addr%:*} port=${daemon_addr##*:}
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$daemon_addr" >&3
  cat <&3
  exec 3<&-
}
# metric <name>: the sum of the samples of <name> (any labels).
metric() { scrape | awk -v n="$1" '$1 == n || index($1, n "{") == 1 {s += $2} END {print s + 0}'; }
# wait_entries <n> <timeout s>: until the resetd_entries gauges sum to n,
# i.e. the first pass is over (the gauges are set at the end of a pass).
wait_entries() {
  local end; end=$(awk -v t="$(now)" -v d="$2" 'BEGIN {printf "%.6f", t + d}')
  while [ "$(metric resetd_entries)" != "$1" ]; do
    awk -v t="$(now)" -v e="$end" 'BEGIN {exit !(t > e)}' && { echo "no first pass within $2 s" >&2; return 1; }
    sleep 0.02
  done
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
proc_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# foreign_reader <dir> <config>: reads the config and another file in its
# directory every 10 ms, in the background; sets $reader_pid.
foreign_reader() {
  echo "not the config" > "$1/notes.txt"
  (while :; do cat "$2" "$1/notes.txt" >/dev/null 2>&1 || true; sleep 0.01; done) &
  reader_pid=$!
}

# The two file shapes validation is measured on (~36 MB each at full size):
# (a) entries carrying their own hashes, (b) hashes in groups, entries
# naming two groups, every tenth one twice (1,000 warnings), (c) as (b),
# each group anchored and copied by an alias, entries naming the copies.
validate_shapes() {
  [ -f "$work/large.yaml" ] || "$examples/gen_config" "$work/large.yaml" "$(size 10000 100)" 100 2>/dev/null
  [ -f "$work/groups.yaml" ] || "$examples/gen_config" --groups "$work/groups.yaml" \
    "$(size 1000 20)" "$(size 1000 50)" "$(size 10000 100)" 2>/dev/null
  [ -f "$work/aliases.yaml" ] || "$examples/gen_config" --aliases "$work/aliases.yaml" \
    "$(size 1000 20)" "$(size 1000 50)" "$(size 10000 100)" 2>/dev/null
}

# ajv-cli 5 with ajv-formats, into the scratch directory (not the machine).
install_ajv() {
  [ -x "$work/node_modules/.bin/ajv" ] && return 0
  (cd "$work" && npm init -y >/dev/null && npm install --silent ajv-cli@5 ajv-formats >/dev/null)
}

# timed <out file> <command...>: appends "wall_s peak_KiB" to <out file>
# (wall to the microsecond; time's %e has centiseconds), the command's
# output to <out file>.log; fails if the command does.
timed() {
  local out=$1 t0 t1; shift
  t0=$(now)
  /usr/bin/time -o "$out.rss" -f "%M" "$@" >"$out.log" 2>&1 \
    || { cat "$out.log" >&2; return 1; }
  t1=$(now)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}') $(cat "$out.rss")" >> "$out"
}

# Each shape validated by resetd and by ajv-cli (reading the same YAML,
# the committed schema, draft 2020), side by side: the runs alternate, so
# both meet the same machine load; medians of 5. Smoke: resetd only, tiny.
bench_validate() {
  validate_shapes
  local runs; runs=$(size 5 1)
  $smoke || install_ajv
  if $smoke; then
    echo "== validate (smoke: resetd only, tiny files)"
  else
    echo "== validate: resetd vs ajv-cli 5 + ajv-formats (--spec=draft2020, reading the YAML), median of $runs, runs alternating; load $(cut -d' ' -f1-3 /proc/loadavg)"
  fi
  local shape f i
  for shape in large groups aliases; do
    f="$work/$shape.yaml"
    rm -f "$work/v.resetd" "$work/v.ajv"
    for i in $(seq "$runs"); do
      timed "$work/v.resetd" "$bin" validate "$f" || return 1
      $smoke || timed "$work/v.ajv" "$work/node_modules/.bin/ajv" validate --spec=draft2020 -c ajv-formats \
        -s schema/resetd.schema.json -d "$f" || return 1
    done
    local rt rm at=0 am=0
    rt=$(median $(awk '{print $1}' "$work/v.resetd")); rm=$(median $(awk '{print $2}' "$work/v.resetd"))
    if ! $smoke; then
      at=$(median $(awk '{print $1}' "$work/v.ajv")); am=$(median $(awk '{print $2}' "$work/v.ajv"))
    fi
    awk -v s="$shape" -v mb="$(du -m "$f" | cut -f1)" \
      -v rt="$rt" -v rm="$rm" -v at="$at" -v am="$am" -v all="$(awk '{printf "%s ", $1}' "$work/v.resetd")" 'BEGIN {
      printf "validate %-6s (%2d MB): resetd %.3f s %3.0f MB (runs: %s)", s, mb, rt, rm / 1024, all
      if (at > 0) printf "| ajv-cli %.3f s %3.0f MB | resetd %.1fx faster, %.0f%% of its memory", at, am / 1024, at / rt, 100 * rm / am
      printf "\n"
    }'
    echo "  resetd: $(tail -n1 "$work/v.resetd.log")$($smoke || echo "; ajv-cli: $(tail -n1 "$work/v.ajv.log")")"
  done
}

bench_peers() {
  validate_shapes
  echo "== peers: check-jsonschema (PyPI) on the entries shape, the committed schema (ajv-cli: see validate)"
  python3 -m venv "$work/venv" && "$work/venv/bin/pip" install -q check-jsonschema
  local out="$work/peers.txt"
  /usr/bin/time -o "$out.resetd" -f "%e %M" "$bin" validate "$work/large.yaml" >/dev/null
  /usr/bin/time -o "$out.cj" -f "%e %M" "$work/venv/bin/check-jsonschema" --schemafile schema/resetd.schema.json \
    "$work/large.yaml" >/dev/null
  read -r rt rm < "$out.resetd"; read -r ct cm < "$out.cj"
  awk -v rt="$rt" -v rm="$rm" -v ct="$ct" -v cm="$cm" 'BEGIN {
    printf "resetd validate:  %6.2f s  %6.0f MB\n", rt, rm / 1024
    printf "check-jsonschema: %6.2f s  %6.0f MB   resetd is %.1fx its speed, %.0f%% of its memory\n", ct, cm / 1024, ct / rt, 100 * rm / cm
  }'
}

# One `run --once --dry-run` of config $1: appends its wall time and peak RSS
# to the caller's `walls` and `rsss` arrays.
timed_dry_run() {
  local t0 t1
  t0=$(now)
  RESETD_LOG=warn /usr/bin/time -o "$work/scale/time" -f "%e %M" "$bin" run --once --dry-run --config "$1" >/dev/null 2>"$work/scale/err" \
    || { cat "$work/scale/err" >&2; return 1; }
  t1=$(now)
  walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')")
  rsss+=("$(awk '{print $2}' "$work/scale/time")")
}

bench_scale() {
  local sizes; sizes=$(size "1000 3000 10000" "50 100 200")
  echo "== scale: run --once --dry-run, entries x 100 hashes, RESETD_LOG=warn, median of 3 (fresh status each run)"
  mkdir -p "$work/scale"
  local n f i out walls rsss points=""
  for n in $sizes; do
    f="$work/scale/c$n.yaml"
    "$examples/gen_config" "$f" "$n" 100 2>/dev/null
    walls=(); rsss=()
    for i in 1 2 3; do
      rm -f "$work/scale/c$n.status.yaml"*
      timed_dry_run "$f" || return 1
    done
    out="$(median "${walls[@]}") $(median "${rsss[@]}")"
    points+="$n $out"$'\n'
    awk -v n="$n" -v o="$out" -v mb="$(du -m "$f" | cut -f1)" -v all="${walls[*]}" 'BEGIN {split(o, x, " ")
      printf "scale: %6d entries (%3d MB): %7.3f s wall (runs: %s), %6.1f MB peak RSS\n", n, mb, x[1], all, x[2] / 1024 }'
  done
  # Growth exponent of wall time over entries: log-log slope between the
  # smallest and largest size, and the least-squares fit over all three.
  printf '%s' "$points" | awk '{n[NR] = log($1); t[NR] = log($2 > 1e-4 ? $2 : 1e-4)}
    END {
      k = NR; sx = sy = sxx = sxy = 0
      for (i = 1; i <= k; i++) { sx += n[i]; sy += t[i]; sxx += n[i] * n[i]; sxy += n[i] * t[i] }
      printf "scale: growth exponent of time over entries: %.2f (end points), %.2f (least squares over %d sizes); 1.00 = linear\n",
        (t[k] - t[1]) / (n[k] - n[1]), (k * sxy - sx * sy) / (k * sxx - sx * sx), k
    }'
  # The steady state: the largest file again, its status present.
  n=${sizes##* }; f="$work/scale/c$n.yaml"
  walls=(); rsss=()
  RESETD_LOG=warn "$bin" run --once --dry-run --config "$f" >/dev/null 2>&1
  for i in 1 2 3; do
    timed_dry_run "$f" || return 1
  done
  awk -v n="$n" -v w="$(median "${walls[@]}")" -v r="$(median "${rsss[@]}")" -v all="${walls[*]}" -v s="$(du -m "$work/scale/c$n.status.yaml" | cut -f1)" 'BEGIN {
    printf "scale: %6d entries, status present (%d MB), steady state: %.3f s wall (runs: %s), %.1f MB peak RSS\n", n, s, w, all, r / 1024 }'
}

bench_daemon() {
  local n; n=$(size 10000 200)
  local secs; secs=$(size 60 2)
  local dir="$work/daemon" f="$work/daemon/resets.yaml"
  mkdir -p "$dir"
  "$examples/gen_config" "$f" "$n" 100 2>/dev/null
  echo "== daemon: run --dry-run --resync 1h on $n entries x 100 hashes ($(du -m "$f" | cut -f1) MB), fresh status"
  local i t0 t1 firsts=() peaks=()
  for i in 1 2 3; do
    rm -f "$dir"/resets.status.yaml*
    t0=$(now)
    start_daemon "$dir/err" --dry-run --resync 1h --config "$f"
    wait_entries "$n" 120
    t1=$(now)
    firsts+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')")
    peaks+=("$(proc_kib "$daemon_pid" VmHWM)")
    [ "$i" = 3 ] || stop_daemon
  done
  awk -v w="$(median "${firsts[@]}")" -v all="${firsts[*]}" -v r="$(median "${peaks[@]}")" 'BEGIN {
    printf "daemon: start -> end of first pass %.2f s (median of 3: %s s; poll every 20 ms), peak RSS after it %.1f MB\n", w, all, r / 1024 }'
  # Idle: the third daemon, nothing due until a cron tomorrow.
  local ticks; ticks=$(getconf CLK_TCK)
  local c0 c1 r0 r1 rss
  r0=$(metric resetd_config_reads_total); c0=$(cpu_ticks "$daemon_pid")
  sleep "$secs"
  c1=$(cpu_ticks "$daemon_pid"); r1=$(metric resetd_config_reads_total)
  rss=$(proc_kib "$daemon_pid" VmRSS)
  stop_daemon
  awk -v d=$((c1 - c0)) -v t="$ticks" -v s="$secs" -v r="$rss" -v reads=$((r1 - r0)) 'BEGIN {
    printf "daemon: idle after the first pass: %.2f s CPU over %d s (%.3f%% of one core), RSS %.1f MB at the end, %d config reads\n",
      d / t, s, 100 * d / t / s, r / 1024, reads }'
}

bench_apply() {
  echo "== apply: hashes at batchSize 100 against the fake API, no rate limit"
  "$examples/bench_apply" "$(size 100000 2000)" 100
  local h; h=$(size 1000 50)
  echo "== apply: $h hashes at batch size 1: $h one-hash entries vs one $h-hash entry, median of 3"
  local i line many=() one=()
  for i in 1 2 3; do
    line=$("$examples/bench_apply" "$h" 1 "$h"); echo "  $line"
    many+=("$(grep -o '= [0-9]* requests/s' <<<"$line" | awk '{print $2}')")
    line=$("$examples/bench_apply" "$h" 1 1); echo "  $line"
    one+=("$(grep -o '= [0-9]* requests/s' <<<"$line" | awk '{print $2}')")
  done
  awk -v m="$(median "${many[@]}")" -v o="$(median "${one[@]}")" 'BEGIN {
    printf "apply: batch 1: %d requests/s over one-hash entries, %d requests/s in one entry: ratio %.2fx (target >= 300 requests/s, within 1.5x)\n",
      m, o, (o > m ? o / m : m / o) }'
}

bench_ha() {
  echo "== ha: the leader's status in etcd (one member, fsync on and --unsafe-no-fsync)"
  "$examples/bench_ha" "$(size 1000 50)" "$(size 200 20)"
}

bench_reaction() {
  echo "== reaction: config save -> first DELETE"
  "$examples/bench_reaction" "$(size 100 5)" 200ms
  "$examples/bench_reaction" "$(size 100 5)" 20ms
  "$examples/bench_reaction" "$(size 100 5)" 200ms 10ms
}

bench_idle() {
  local secs; secs=$(size 60 2)
  echo "== idle: daemon with nothing due, --resync 1h, ${secs} s"
  mkdir -p "$work/idle"
  local f="$work/idle/resets.yaml"
  printf 'apiVersion: resetd/v1\nkind: SessionResets\nresets:\n  - id: yearly\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n    trigger: {cron: "0 0 1 1 *"}\n' \
    > "$f"
  start_daemon "$work/idle/err" --resync 1h --config "$f"
  wait_entries 1 30
  local ticks; ticks=$(getconf CLK_TCK)
  local variant c0 c1 r0 r1 rss reader_pid=
  for variant in alone "foreign reader every 10 ms"; do
    [ "$variant" = alone ] || foreign_reader "$work/idle" "$f"
    r0=$(metric resetd_config_reads_total); c0=$(cpu_ticks "$daemon_pid")
    sleep "$secs"
    c1=$(cpu_ticks "$daemon_pid"); r1=$(metric resetd_config_reads_total)
    rss=$(proc_kib "$daemon_pid" VmRSS)
    if [ -n "$reader_pid" ]; then kill "$reader_pid"; wait "$reader_pid" 2>/dev/null || true; fi
    awk -v v="$variant" -v d=$((c1 - c0)) -v t="$ticks" -v s="$secs" -v r="$rss" -v reads=$((r1 - r0)) 'BEGIN {
      printf "idle (%s): %.3f s CPU over %d s (%.3f%% of one core), RSS %.1f MB, %d config reads\n", v, d / t, s, 100 * d / t / s, r / 1024, reads }'
  done
  stop_daemon
}

# Config directories (SPEC §2b): the entries shape as one file and as FILES
# files holding the same entries, validated alternately (medians of 5); then
# the daemon on each: an edit's save -> first DELETE and the reload's cost.
bench_dirs() {
  local files entries edits; files=$(size 1000 10); entries=$(size 10000 100); edits=$(size 50 3)
  mkdir -p "$work/dirs"
  local f="$work/dirs/one.yaml" d="$work/dirs/set.d"
  [ -f "$f" ] || "$examples/gen_config" "$f" "$entries" 100 2>/dev/null
  [ -d "$d" ] || "$examples/gen_config" --split "$files" "$d" "$entries" 100 2>/dev/null
  local runs; runs=$(size 5 1)
  echo "== dirs: validate $entries entries x 100 hashes as one file and as $files files, median of $runs, runs alternating"
  rm -f "$work/dirs/v.one" "$work/dirs/v.set"
  local i
  for i in $(seq "$runs"); do
    timed "$work/dirs/v.one" "$bin" validate "$f" || return 1
    timed "$work/dirs/v.set" "$bin" validate "$d" || return 1
  done
  local ot om st sm
  ot=$(median $(awk '{print $1}' "$work/dirs/v.one")); om=$(median $(awk '{print $2}' "$work/dirs/v.one"))
  st=$(median $(awk '{print $1}' "$work/dirs/v.set")); sm=$(median $(awk '{print $2}' "$work/dirs/v.set"))
  awk -v ot="$ot" -v om="$om" -v st="$st" -v sm="$sm" -v n="$files" 'BEGIN {
    printf "dirs: validate one file %.3f s %.0f MB | %d files %.3f s %.0f MB | ratio %.2fx (target <= 1.5x)\n", ot, om / 1024, n, st, sm / 1024, st / ot }'
  echo "== dirs: daemon, one edit -> first DELETE, $edits edits, --debounce 200ms"
  "$examples/bench_dir_reaction" "$files" "$entries" 100 "$edits" 200ms
  "$examples/bench_dir_reaction" "$files" "$entries" 100 "$edits" 200ms --one-file
}

bench_fuzz() {
  local cases=${FUZZ_CASES:-$(size 50000 500)}
  echo "== fuzz: ${cases} cases per property (config loader, status emitter)"
  PROPTEST_CASES=$cases cargo test --profile "$profile" --locked -q --test it fuzz 2>&1 | grep -E "test result|panicked|minimal failing"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sm)"
if want validate; then bench_validate; fi
if want scale; then bench_scale; fi
if want daemon; then bench_daemon; fi
if want apply; then bench_apply; fi
if want ha; then bench_ha; fi
if want subusers; then
  echo "== subusers: what looking up users: adds to run --once (all pages against the fake API)"
  "$examples/bench_subusers" "$(size 10000 300)" "$(size 5 1)"
fi
if want reaction; then bench_reaction; fi
if want idle; then bench_idle; fi
if want dirs; then bench_dirs; fi
if want fuzz; then bench_fuzz; fi
# Peers need PyPI and npm and minutes of time: full runs only.
if ! $smoke && want peers; then bench_peers; fi
