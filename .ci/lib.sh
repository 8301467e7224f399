# shellcheck shell=bash
# Helpers for the CI scripts (sourced, not run).
# shellcheck disable=SC2317,SC2329 # functions called through deadline_loop

# apt_install <Debian package>: install it, quietly. CI runs as root on
# Debian 12.
apt_updated=false
apt_install() {
  if ! $apt_updated; then
    apt-get update -qq
    apt_updated=true
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null
}

# need <command or path> <Debian package>: install the package, quietly,
# unless the command is already there.
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing the Debian package $2 (for $1)"
  apt_install "$2"
  command -v "$1" >/dev/null 2>&1 || { echo "the package $2 installed no $1" >&2; return 1; }
}

# deadline_loop <seconds> <description> <command...>: run the command every
# 50 ms until it succeeds; fail after <seconds>.
deadline_loop() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@"; do
    if [ "$SECONDS" -ge "$end" ]; then echo "no $what within $secs s" >&2; return 1; fi
    sleep 0.05
  done
}

# start_daemon <log file> <command...>: start a `resetd run --listen
# 127.0.0.1:0 ...` command line in the background; sets $daemon_pid and
# $daemon_addr (from its "listening on" log line). Logs must be text.
start_daemon() {
  local log=$1; shift
  NO_COLOR=1 RESETD_LOG=info RESETD_LOG_FORMAT=text "$@" >/dev/null 2>"$log" &
  daemon_pid=$!
  daemon_addr=
  listening() {
    daemon_addr=$(grep -s -o -m1 'listening on [0-9.:]*' "$log" | awk '{print $3}') || true
    [ -n "$daemon_addr" ] && return 0
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    return 1
  }
  deadline_loop 60 "listening daemon" listening
}

# get <path> [Accept]: the daemon's raw HTTP response (bash /dev/tcp: no
# curl needed).
get() {
  local host=${daemon_addr%:*} port=${daemon_addr##*:}
  exec 3<>"/dev/tcp/$host/$port"
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n%s\r\n' "$1" "$daemon_addr" "${2:+Accept: $2$'\r\n'}" >&3
  cat <&3
  exec 3<&-
}

# body <response>: the body of a raw HTTP response on stdin.
body() { sed '1,/^\r$/d'; }

# stop_daemon: SIGTERM, and wait for it to finish writing its status.
stop_daemon() {
  [ -n "${daemon_pid:-}" ] || return 0
  kill -TERM "$daemon_pid" 2>/dev/null || true
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=''
}

# free_port: a TCP port free on 127.0.0.1 just now (for servers, like etcd,
# that cannot report the port they were given for port 0).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# make_etcd_tls <dir>: a CA, a certificate for etcd's members (server and
# peer, valid for localhost and 127.0.0.1) and a client certificate for
# resetd (no common name), made with the openssl commands of README's "etcd
# auth and TLS": ca.crt, etcd.crt/.key, resetd.crt/.key.
make_etcd_tls() {
  local dir=$1
  mkdir -p "$dir"
  (
    cd "$dir" || exit 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj /CN=resetd-etcd-ca -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=etcd \
      -keyout etcd.key -out etcd.csr 2>/dev/null
    printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
      'extendedKeyUsage=serverAuth,clientAuth' > etcd.ext
    openssl x509 -req -in etcd.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
      -extfile etcd.ext -out etcd.crt 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /O=resetd \
      -keyout resetd.key -out resetd.csr 2>/dev/null
    echo 'extendedKeyUsage=clientAuth' > resetd.ext
    openssl x509 -req -in resetd.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
      -extfile resetd.ext -out resetd.crt 2>/dev/null
  )
}

# start_etcd <data dir> <tls dir>: a one-member etcd on 127.0.0.1 with TLS
# and client certificates required, as examples/kubernetes/etcd.yaml runs
# its members; sets $etcd_pid and $etcd_url once it answers.
start_etcd() {
  local data=$1 tls=$2 client peer
  client=$(free_port) peer=$(free_port)
  etcd_url=https://127.0.0.1:$client
  etcd --name ci --data-dir "$data" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "https://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "https://127.0.0.1:$peer" \
    --initial-cluster "ci=https://127.0.0.1:$peer" \
    --client-cert-auth --trusted-ca-file "$tls/ca.crt" \
    --cert-file "$tls/etcd.crt" --key-file "$tls/etcd.key" \
    --peer-client-cert-auth --peer-trusted-ca-file "$tls/ca.crt" \
    --peer-cert-file "$tls/etcd.crt" --peer-key-file "$tls/etcd.key" \
    >"$data.log" 2>&1 &
  # shellcheck disable=SC2034 # for the caller, which stops it
  etcd_pid=$!
  etcd_healthy() {
    ETCDCTL_API=3 etcdctl --endpoints "$etcd_url" --cacert "$tls/ca.crt" \
      --cert "$tls/resetd.crt" --key "$tls/resetd.key" endpoint health >/dev/null 2>&1
  }
  deadline_loop 30 "healthy etcd" etcd_healthy
}

# enable_etcd_auth <tls dir> <password>: README's "etcd auth and TLS" etcdctl
# commands on the etcd of start_etcd: a root user, a role that may read and
# write /resetd/default/ only, the user resetd with that role and password,
# and authentication on.
enable_etcd_auth() {
  local tls=$1 password=$2
  e() {
    ETCDCTL_API=3 etcdctl --endpoints "$etcd_url" --cacert "$tls/ca.crt" \
      --cert "$tls/resetd.crt" --key "$tls/resetd.key" "$@" >/dev/null
  }
  e user add root --new-user-password "$(openssl rand -hex 16)"
  e user grant-role root root
  e role add resetd
  e role grant-permission resetd --prefix=true readwrite /resetd/default/
  e user add resetd --new-user-password "$password"
  e user grant-role resetd resetd
  e auth enable
}
