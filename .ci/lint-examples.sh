#!/usr/bin/env bash
# The deployment examples, checked with the tools operators use on them:
#  - systemd-analyze security: each unit's exposure stays <= 2.0;
#  - systemd-analyze verify: each unit is well-formed;
#  - each unit's sandbox fits resetd: its ExecStart runs under strace against
#    the mock API (a reset, a config edit, SIGHUP, scrapes, SIGTERM; the HA
#    unit against a real local etcd over TLS), and every system call is
#    allowed by SystemCallFilter=, every socket family by
#    RestrictAddressFamilies=, no mapping is writable and executable
#    (MemoryDenyWriteExecute=). CI has no systemd to run the units themselves.
#  - the Kubernetes manifests: every document parsed by PyYAML (a YAML 1.1
#    reader, as kubectl's is lenient where resetd's is strict) and validated
#    against Kubernetes' own schemas, unknown fields refused
#    (kubernetes-validate from PyPI, which ships the schemas: no cluster);
#    resetd-ha.yaml's container run as two members (its env resolved from
#    the manifest's ConfigMap and Secrets) against that etcd: one leads and
#    sends; killed, the other takes over;
#  - README's install commands (cargo install in debug mode, reusing CI's
#    build).
# The Kubernetes manifests' structure is checked and the single instance's
# container command line run by `cargo test` (tests/it/ops.rs,
# tests/it/ha_examples.rs). The Dockerfile is not built: no Docker engine.
set -euo pipefail
# shellcheck disable=SC2317 # functions called through deadline_loop
cd "$(dirname "$0")/.."
source .ci/lib.sh
need systemd-analyze systemd
need strace strace

units=(examples/systemd/resetd.service examples/systemd/resetd-ha.service)
max_exposure=2.0
work=$(mktemp -d)
daemon_pid='' api_pid='' resetd_pid='' etcd_pid='' members=()
# Under strace, the daemon is strace's child: stop resetd, then strace ends.
cleanup() {
  local member
  for member in "${members[@]}"; do kill -KILL "$member" 2>/dev/null || true; done
  [ -z "$resetd_pid" ] || kill -TERM "$resetd_pid" 2>/dev/null || true
  [ -z "$daemon_pid" ] || wait "$daemon_pid" 2>/dev/null || true
  [ -z "$api_pid" ] || kill "$api_pid" 2>/dev/null || true
  [ -z "$etcd_pid" ] || kill "$etcd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for unit in "${units[@]}"; do
  echo "== systemd-analyze security $unit"
  exposure=$(systemd-analyze security --offline=true "$unit" 2>&1 |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  [ -n "$exposure" ] || { echo "no exposure level in systemd-analyze's output" >&2; exit 1; }
  echo "exposure $exposure (at most $max_exposure)"
  awk -v e="$exposure" -v m="$max_exposure" 'BEGIN {exit !(e <= m)}' ||
    { systemd-analyze security --offline=true "$unit" | grep -v '^✓' >&2; exit 1; }
done

cargo build --locked -q --bin resetd --example mock_api
bin=$PWD/target/debug/resetd

for unit in "${units[@]}"; do
  echo "== systemd-analyze verify $unit"
  # verify checks that ExecStart's binary exists: point it at this build.
  sed "s|/usr/local/bin/resetd|$bin|" "$unit" > "$work/$(basename "$unit")"
  systemd-analyze verify "$work/$(basename "$unit")"
done

target/debug/examples/mock_api 127.0.0.1:0 > "$work/api" &
api_pid=$!
api_base() { grep -o -m1 'api-base [^ )]*' "$work/api" | awk '{print $2}'; }
api_up() { [ -n "$(api_base)" ]; }
deadline_loop 30 "mock API" api_up
api=$(api_base)

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

# sandbox_check <unit> <credential name=file...>: the unit's ExecStart under
# strace, its paths mapped into a scratch directory, the credentials copied
# into its CREDENTIALS_DIRECTORY; a reset, an edit, SIGHUP, scrapes and
# SIGTERM; then its system calls, socket families and mappings against the
# unit's sandbox. The environment (etcd's endpoints) is the caller's.
sandbox_check() {
  local unit=$1 run; shift
  run=$work/run-$(basename "$unit" .service)
  echo "== the sandbox of $unit against what resetd does"
  mkdir "$run" "$run/etc" "$run/state" "$run/credentials"
  # Settings, continuation lines joined; `setting <Key>` prints its values.
  sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$unit" > "$run/unit"
  setting() { sed -n "s/^$1=//p" "$run/unit"; }
  cp examples/minimal.yaml "$run/etc/resets.yaml"
  echo "ci-token" > "$run/credentials/token"
  local credential
  for credential in "$@"; do cp "${credential#*=}" "$run/credentials/${credential%%=*}"; done
  # The mock API's log is shared: count only what is sent from now on.
  local api_seen
  api_seen=$(wc -l < "$work/api")
  # The unit's command line, its paths mapped into $run, its specifiers and
  # variables given their values (%H: a host name; $IMPORT_STATUS: empty,
  # as its default). Word splitting is wanted: the units' ExecStart has no
  # quoted arguments.
  # shellcheck disable=SC2016 # $IMPORT_STATUS is the unit's text, not ours
  read -r -a argv <<<"$(setting ExecStart | sed \
    -e "s|/usr/local/bin/resetd|$bin|" \
    -e "s|/etc/resetd/|$run/etc/|g" \
    -e "s|/var/lib/resetd/|$run/state/|g" \
    -e "s|\${CREDENTIALS_DIRECTORY}/|$run/credentials/|g" \
    -e "s|%H|ci-host|g" \
    -e 's|\$IMPORT_STATUS||g' \
    -e "s|127.0.0.1:9090|127.0.0.1:0|")"
  RESETD_API_BASE=$api start_daemon "$run/log" strace -f -qq -o "$run/trace" "${argv[@]}"
  resetd_pid=$(pgrep -P "$daemon_pid" -x resetd)
  sent() { tail -n +"$((api_seen + 1))" "$work/api" | grep -q '^DELETE /v1/sessions'; }
  deadline_loop 30 "DELETE at the mock API" sent || { tail -n 20 "$run/log" >&2; exit 1; }
  echo "# edited" >> "$run/etc/resets.yaml"
  reloads() { grep -c 'config reloaded' "$run/log" || true; }
  reloaded() { [ "$(reloads)" -ge "$1" ]; }
  deadline_loop 30 "reload after an edit" reloaded 1
  kill -HUP "$resetd_pid"
  deadline_loop 30 "reload after SIGHUP" reloaded 2
  get /metrics >/dev/null
  get /status >/dev/null
  kill -TERM "$resetd_pid"
  # strace exits with resetd's code: a failed stop fails here.
  wait "$daemon_pid" || { cat "$run/log" >&2; exit 1; }
  daemon_pid='' resetd_pid=''

  : > "$run/allowed"; : > "$run/denied"
  local filter
  while read -r filter; do
    # shellcheck disable=SC2086 # a list of names
    case $filter in
      '~'*) expand ${filter#\~} >> "$run/denied" ;;
      *) expand $filter >> "$run/allowed" ;;
    esac
  done < <(setting SystemCallFilter)
  sort -u "$run/allowed" > "$run/a"; sort -u "$run/denied" > "$run/d"
  comm -23 "$run/a" "$run/d" > "$run/permitted"
  grep -oE '^[0-9]+ +[a-z0-9_]+\(' "$run/trace" | awk '{print $2}' | tr -d '(' | sort -u > "$run/used"
  local forbidden families family
  forbidden=$(comm -23 "$run/used" "$run/permitted")
  [ -z "$forbidden" ] || { echo "system calls SystemCallFilter= would refuse: $forbidden" >&2; exit 1; }
  families=$(grep -oE '(socket|socketpair)\(AF_[A-Z0-9]+' "$run/trace" | sed 's/.*(//' | sort -u)
  for family in $families; do
    [[ " $(setting RestrictAddressFamilies) " == *" $family "* ]] ||
      { echo "socket family $family not in RestrictAddressFamilies=" >&2; exit 1; }
  done
  if grep -E '(mmap|mprotect)\(.*PROT_(WRITE.*PROT_EXEC|EXEC.*PROT_WRITE)' "$run/trace"; then
    echo "a writable and executable mapping: MemoryDenyWriteExecute= would refuse it" >&2
    exit 1
  fi
  echo "$(wc -l < "$run/used") system calls, all allowed; socket families: ${families//$'\n'/ }"
}

sandbox_check examples/systemd/resetd.service
grep -q 'stopped; status written' "$work/run-resetd/log" || { cat "$work/run-resetd/log" >&2; exit 1; }

  # A real etcd over TLS with client certificates and its authentication
  # on, as README's "etcd auth and TLS" sets it up; the endpoints and the
  # user as the unit's ha.env gives them.
  need etcd etcd-server
  need etcdctl etcd-client
  need openssl openssl
  make_etcd_tls "$work/tls"
  start_etcd "$work/etcd" "$work/tls"
  # The user's password is the Kubernetes example's Secret's, for its run
  # below.
  etcd_password=$(sed -n 's/^  password: "\(.*\)"$/\1/p' examples/kubernetes/resetd-ha.yaml)
  [ -n "$etcd_password" ] || { echo "no password in resetd-ha.yaml's Secret" >&2; exit 1; }
  enable_etcd_auth "$work/tls" "$etcd_password"
  RESETD_ETCD_ENDPOINTS=$etcd_url RESETD_ETCD_USERNAME=resetd RESETD_ETCD_PASSWORD=$etcd_password \
    sandbox_check examples/systemd/resetd-ha.service \
    etcd-ca="$work/tls/ca.crt" etcd-cert="$work/tls/resetd.crt" etcd-key="$work/tls/resetd.key"

echo "== the Kubernetes manifests: PyYAML, kubernetes-validate --strict"
# A scratch virtual environment: nothing installed into the system's Python.
python3 -m venv "$work/venv" >/dev/null 2>&1 || { apt_install python3-venv; python3 -m venv "$work/venv"; }
"$work/venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate==1.37.0
manifests=(examples/kubernetes/*.yaml)
"$work/venv/bin/python" - "${manifests[@]}" <<'PY'
import sys, yaml
for path in sys.argv[1:]:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    kinds = [d["kind"] for d in docs]
    print(f"{path}: {len(docs)} documents ({', '.join(kinds)})")
PY
"$work/venv/bin/kubernetes-validate" --strict --quiet "${manifests[@]}"
echo "kubernetes-validate --strict: ${#manifests[@]} files valid against its default Kubernetes version"

# member_env <pod name> <root>: the resetd container of resetd-ha.yaml as
# shell assignments: argv (its args, the mounts mapped under <root>, the
# listener on an ephemeral port, $(VAR) expanded), the environment with its
# references resolved from the manifest itself (ConfigMap, Secret, the
# pod's name), the mounts to create and the ConfigMap's config.
member_env() {
  "$work/venv/bin/python" - "$1" "$2" <<'PY'
import shlex, sys, yaml
pod, root = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open("examples/kubernetes/resetd-ha.yaml")) if d]
def find(kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
container = find("Deployment", "resetd")["spec"]["template"]["spec"]["containers"][0]
env = {}
for var in container["env"]:
    source = var.get("valueFrom", {})
    if "value" in var:
        env[var["name"]] = var["value"]
    elif "fieldRef" in source:
        assert source["fieldRef"]["fieldPath"] == "metadata.name"
        env[var["name"]] = pod
    elif "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        env[var["name"]] = find("ConfigMap", ref["name"])["data"][ref["key"]]
    else:
        ref = source["secretKeyRef"]
        env[var["name"]] = find("Secret", ref["name"])["stringData"][ref["key"]]
argv = []
for arg in container["args"]:
    for mount in container["volumeMounts"]:
        arg = arg.replace(mount["mountPath"] + "/", f"{root}/{mount['name']}/")
    for name, value in env.items():
        arg = arg.replace(f"$({name})", value)
    argv.append(arg.replace("0.0.0.0:9090", "127.0.0.1:0"))
print("argv=(" + " ".join(map(shlex.quote, argv)) + ")")
print("env=(" + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + ")")
print("mounts=(" + " ".join(m["name"] for m in container["volumeMounts"]) + ")")
print("config=" + shlex.quote(find("ConfigMap", "resetd-config")["data"]["resets.yaml"]))
PY
}

  echo "== resetd-ha.yaml's container: two members against that etcd, the leader killed"
  # The etcd of the HA unit's run, its endpoints in place of the cluster's
  # DNS names (the user and password are the example Secret's).
  api_seen=$(wc -l < "$work/api")
  declare -A addr=() pid=()
  for name in resetd-6c9f7-a resetd-6c9f7-b; do
    root=$work/$name
    argv=() env=() mounts=() config=''
    eval "$(member_env "$name" "$root")"
    for mount in "${mounts[@]}"; do mkdir -p "$root/$mount"; done
    printf '%s  - id: now\n    hashes: [AAAA1]\n' "$config" > "$root/config/resets.yaml"
    echo "ci-token" > "$root/token/token"
    cp "$work/tls/ca.crt" "$root/etcd-tls/ca.crt"
    cp "$work/tls/resetd.crt" "$root/etcd-tls/tls.crt"
    cp "$work/tls/resetd.key" "$root/etcd-tls/tls.key"
    env "${env[@]}" RESETD_ETCD_ENDPOINTS="$etcd_url" RESETD_API_BASE="$api" \
      RESETD_LOG_FORMAT=text NO_COLOR=1 "$bin" "${argv[@]}" >/dev/null 2>"$root.log" &
    pid[$name]=$!
    members+=("$!")
  done
  for name in "${!pid[@]}"; do
    listening() { addr[$name]=$(grep -s -o -m1 'listening on [0-9.:]*' "$work/$name.log" | awk '{print $3}'); [ -n "${addr[$name]}" ]; }
    deadline_loop 30 "$name listening" listening || { cat "$work/$name.log" >&2; exit 1; }
  done
  # get from one member; the gauge of one metric.
  member_get() { daemon_addr=${addr[$1]} get "$2"; }
  gauge() { member_get "$1" /metrics | body | awk -v m="$2" '$1 == m {print $2}'; }
  both_ready() { for name in "${!pid[@]}"; do [[ "$(member_get "$name" /readyz)" == "HTTP/1."?" 200 "* ]] || return 1; done; }
  deadline_loop 30 "both members ready" both_ready
  sent() { tail -n +"$((api_seen + 1))" "$work/api" | grep -q '^DELETE /v1/sessions'; }
  deadline_loop 30 "a DELETE from the leader" sent
  # The gauges follow the leadership every 200 ms, and a new leader's
  # first DELETE can come sooner: wait for them to say one leader.
  one_leader() {
    leaders=$(for name in "${!pid[@]}"; do if [ "$(gauge "$name" resetd_ha_leader)" = 1 ]; then echo "$name"; fi; done)
    [ -n "$leaders" ] && [ "$(wc -l <<<"$leaders")" = 1 ]
  }
  deadline_loop 10 "the gauges showing one leader" one_leader || { echo "leaders: '$leaders'" >&2; exit 1; }
  for name in "${!pid[@]}"; do if [ "$name" != "$leaders" ]; then standby=$name; fi; done
  start=$(date +%s%N)
  kill -KILL "${pid[$leaders]}"
  wait "${pid[$leaders]}" 2>/dev/null || true
  took_over() { [ "$(gauge "$standby" resetd_ha_leader)" = 1 ]; }
  # The contract is the lease (5s) plus 1 s; a loaded CI machine gets slack.
  deadline_loop 20 "$standby taking over" took_over
  echo "$leaders killed; $standby leads after $((($(date +%s%N) - start) / 1000000)) ms (--ha-lease 5s)"
  kill -TERM "${pid[$standby]}"
  wait "${pid[$standby]}" || { cat "$work/$standby.log" >&2; exit 1; }

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
