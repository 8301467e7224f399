# shellcheck shell=bash
# Helpers for the CI scripts (sourced, not run).
# shellcheck disable=SC2317 # functions called through deadline_loop

# need <command or path> <Debian package>: install the package, quietly,
# unless the command is already there. CI runs as root on Debian 12.
apt_updated=false
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing the Debian package $2 (for $1)"
  if ! $apt_updated; then
    apt-get update -qq
    apt_updated=true
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
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
    daemon_addr=$(grep -o -m1 'listening on [0-9.:]*' "$log" | awk '{print $3}') || true
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
