#!/usr/bin/env bash
# Local services for civic-etl, on loopback, without Docker:
#   - PostgreSQL 15 + PostGIS (Debian packages), a private cluster in .local/pg;
#   - moto server (S3 with S3→SQS notifications, SQS, Secrets Manager) from a virtualenv in .local/venv;
#   - MariaDB (Debian's mariadb-server), a private instance in .local/mariadb: the database that SQL
#     sources (`source.type: sql`, engine mysql) are tested against.
#
# usage: scripts/services.sh start|stop|status|env|clean|install
#   start    install what is missing, start the services (no-op for those already running), write
#            .local/env (shell `export` lines: DATABASE_URL, MARIADB_URL, AWS_ENDPOINT_URL, AWS_REGION, dummy keys)
#   stop     stop the services (data in .local/pg and .local/mariadb is kept; moto keeps its state in memory only)
#   status   show what runs; exit status 0 when everything start would start is running, 3 otherwise
#   env      print .local/env (e.g. `eval "$(scripts/services.sh env)"`)
#   clean    stop, then remove the cluster (.local/pg), MariaDB's (.local/mariadb), moto's files (.local/moto) and .local/env
#   install  only install what is missing (apt packages, the virtualenv); used by .ci/run
#
# DATABASE_URL set by the caller (and not the URL of our own cluster) means "use that database":
# no local cluster is installed or started, and .local/env carries that URL. MARIADB_URL likewise.
#
# Everything is bounded: apt waits at most CIVIC_ETL_APT_LOCK_TIMEOUT s (default 900) for a lock
# held by another apt/dpkg, PostgreSQL, MariaDB and moto get 60 s to come up; on failure the log tail is shown.
set -euo pipefail
umask 022

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
ENV_FILE="$LOCAL/env"
LOG_DIR="$LOCAL/logs"

PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR="$LOCAL/pg" # or a link to the cluster folder elsewhere: see prepare_pg_dir
PG_PORT_FILE="$PG_DIR/port"
pg_paths() { # postgres gets real paths: it may not be able to follow the link's folder
  local real="$PG_DIR"
  [[ -L "$PG_DIR" ]] && real="$(readlink -f "$PG_DIR")"
  PGDATA="$real/data"
  PG_LOG="$real/postgres.log"
}
pg_paths
PG_PORTS=(54320 54399)
DB_NAME=civic_etl
DB_USER=postgres

VENV="$LOCAL/venv"
# pip requirement(s), space-separated; pinned to the version the local runtime was verified with.
# A lighter set that covers what civic-etl uses installs in ~15 s instead of ~1 min:
#   CIVIC_ETL_MOTO_SPEC='moto[s3,sqs,secretsmanager]==5.2.5 flask flask-cors'
MOTO_SPEC="${CIVIC_ETL_MOTO_SPEC:-moto[server]==5.2.5}"
MOTO_DIR="$LOCAL/moto"
MOTO_PID_FILE="$MOTO_DIR/pid"
MOTO_PORT_FILE="$MOTO_DIR/port"
MOTO_LOG="$MOTO_DIR/moto.log"
MOTO_PORTS=(54400 54479)

MY_BIN=/usr/sbin/mariadbd
MY_INSTALL_DB=/usr/bin/mariadb-install-db
MY_DIR="$LOCAL/mariadb" # or a link to the instance folder elsewhere: see prepare_my_dir
MY_PORT_FILE="$MY_DIR/port"
my_paths() { # mariadbd gets real paths, as postgres does
  local real="$MY_DIR"
  [[ -L "$MY_DIR" ]] && real="$(readlink -f "$MY_DIR")"
  MY_DATA="$real/data"
  MY_CNF="$real/my.cnf"
  MY_LOG="$real/mariadb.log"
  MY_PID_FILE="$real/mariadbd.pid"
  MY_SOCK="$real/mariadbd.sock"
  # a Unix socket path has at most 107 bytes
  ((${#MY_SOCK} < 100)) || MY_SOCK="/tmp/civic-etl-mariadb-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12).sock"
}
my_paths
MY_PORTS=(54500 54579)
MY_DB_NAME=civic_etl

APT_LOCK_TIMEOUT="${CIVIC_ETL_APT_LOCK_TIMEOUT:-900}"
START_TIMEOUT="${CIVIC_ETL_START_TIMEOUT:-60}"

say() { printf '%s\n' "$*"; }
warn() { printf 'services: %s\n' "$*" >&2; }
die() {
  printf 'services: error: %s\n' "$1" >&2
  if [[ -n "${2:-}" && -f "$2" ]]; then
    printf -- '--- last lines of %s ---\n' "$2" >&2
    tail -n "${3:-30}" "$2" >&2 || true
    printf -- '---\n' >&2
  fi
  exit 1
}

# ---------------------------------------------------------------------------------------------
# privileges: PostgreSQL refuses to run as root, so as root its programs run as `postgres`.
if [[ $EUID -eq 0 ]]; then
  SUDO=()
  as_pg() { (cd / && runuser -u postgres -- "$@" 9>&-); }
else
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=(sudo -n); else SUDO=(__no_root__); fi
  as_pg() { "$@" 9>&-; }
fi

# DATABASE_URL from the caller that is not our own cluster's URL: use it, start no cluster.
local_db_url() {
  local port
  port="$(cat "$PG_PORT_FILE" 2>/dev/null || true)"
  [[ -n "$port" ]] && printf 'postgres://%s@127.0.0.1:%s/%s' "$DB_USER" "$port" "$DB_NAME"
  return 0
}
external_db() { [[ -n "${DATABASE_URL:-}" && "$DATABASE_URL" != "$(local_db_url)" ]]; }

# MARIADB_URL likewise: a MariaDB/MySQL of the caller's own, no local instance.
local_my_url() {
  local port
  port="$(cat "$MY_PORT_FILE" 2>/dev/null || true)"
  [[ -n "$port" ]] && printf 'mysql://root@127.0.0.1:%s/%s' "$port" "$MY_DB_NAME"
  return 0
}
external_mariadb() { [[ -n "${MARIADB_URL:-}" && "$MARIADB_URL" != "$(local_my_url)" ]]; }

# ---------------------------------------------------------------------------------------------
# installation

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# apt-get with retries while another apt/dpkg holds its lock (bounded by APT_LOCK_TIMEOUT).
apt_run() {
  [[ "${SUDO[0]:-}" == __no_root__ ]] && die "need root (or passwordless sudo) to run: apt-get $*"
  mkdir -p "$LOG_DIR"
  local log="$LOG_DIR/apt.log" deadline=$((SECONDS + APT_LOCK_TIMEOUT)) rc configured=0 waited=0
  while :; do
    rc=0
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=30 \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >"$log" 2>&1 </dev/null || rc=$?
    ((rc == 0)) && return 0
    if grep -qiE 'could not get lock|unable to acquire the dpkg|unable to lock' "$log"; then
      ((SECONDS < deadline)) || die "apt/dpkg lock still held after ${APT_LOCK_TIMEOUT}s (another apt running?)" "$log"
      ((waited)) || say "waiting for another apt/dpkg to release its lock (up to ${APT_LOCK_TIMEOUT}s)…"
      waited=1
      sleep 5
      continue
    fi
    if ((!configured)) && grep -q 'dpkg --configure -a' "$log"; then
      say "finishing an interrupted dpkg run (dpkg --configure -a)…"
      "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive dpkg --configure -a >>"$log" 2>&1 </dev/null || true
      configured=1
      continue
    fi
    die "apt-get $* failed (exit $rc)" "$log"
  done
}

install_packages() {
  local pkgs=() p
  if ! external_db; then
    for p in postgresql postgresql-15-postgis-3; do pkg_installed "$p" || pkgs+=("$p"); done
    # a half-finished install (e.g. one running in the background right now) shows up here too
    [[ -x "$PG_BIN/initdb" && -f /usr/share/postgresql/15/extension/postgis.control ]] ||
      pkgs+=(postgresql postgresql-15-postgis-3)
  fi
  if ! external_mariadb; then
    pkg_installed mariadb-server || pkgs+=(mariadb-server)
    [[ -x "$MY_BIN" && -x "$MY_INSTALL_DB" ]] || pkgs+=(mariadb-server)
  fi
  command -v python3 >/dev/null || pkgs+=(python3)
  # GDAL's ogr2ogr/ogrinfo: tests compare geometry columns with what ogr2ogr writes; `npm run bench -- geo` times it
  command -v ogr2ogr >/dev/null || pkgs+=(gdal-bin)
  # a real browser for the tests of what people see (the HTML quality report, the console): Debian's Chromium,
  # driven headless by playwright-core; a font so text renders the same everywhere
  [[ -x /usr/bin/chromium ]] || pkgs+=(chromium)
  pkg_installed fonts-dejavu-core || pkgs+=(fonts-dejavu-core)
  if [[ ! -x "$VENV/bin/python" ]] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then pkgs+=(python3-venv); fi
  ((${#pkgs[@]})) || return 0
  mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
  if [[ " ${pkgs[*]} " == *postgis* ]]; then
    say "installing PostGIS (one time, ~20 s)… [apt: ${pkgs[*]}]"
  else
    say "installing with apt (one time): ${pkgs[*]}…"
  fi
  local t=$SECONDS
  apt_run update
  apt_run install --no-install-recommends "${pkgs[@]}"
  say "installed ${pkgs[*]} in $((SECONDS - t)) s"
  if ! external_db; then
    [[ -x "$PG_BIN/initdb" ]] || die "apt finished but $PG_BIN/initdb is missing" "$LOG_DIR/apt.log"
    [[ -f /usr/share/postgresql/15/extension/postgis.control ]] || die "apt finished but PostGIS is missing" "$LOG_DIR/apt.log"
  fi
  if ! external_mariadb; then
    [[ -x "$MY_BIN" && -x "$MY_INSTALL_DB" ]] || die "apt finished but MariaDB is missing ($MY_BIN, $MY_INSTALL_DB)" "$LOG_DIR/apt.log"
  fi
}

install_venv() {
  [[ -x "$VENV/bin/moto_server" ]] && return 0
  mkdir -p "$LOG_DIR"
  local log="$LOG_DIR/pip.log" t=$SECONDS
  if [[ ! -x "$VENV/bin/python" ]]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV" >"$log" 2>&1 || die "could not create the virtualenv $VENV" "$log"
  fi
  local specs
  read -r -a specs <<<"$MOTO_SPEC"
  say "installing $MOTO_SPEC into .local/venv (one time, ~1 min)…"
  timeout 900 "$VENV/bin/pip" install -q --disable-pip-version-check --no-input "${specs[@]}" >>"$log" 2>&1 </dev/null ||
    die "pip install $MOTO_SPEC failed (or took over 15 min)" "$log"
  [[ -x "$VENV/bin/moto_server" ]] || die "pip finished but $VENV/bin/moto_server is missing" "$log"
  say "installed moto in $((SECONDS - t)) s"
}

install_all() {
  mkdir -p "$LOCAL"
  install_packages
  install_venv
}

# ---------------------------------------------------------------------------------------------
# ports

port_free() {
  python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no conflict
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

# choose_port PREFERRED LOW HIGH: PREFERRED if free, else the first free port in LOW..HIGH
choose_port() {
  local preferred=$1 lo=$2 hi=$3 p
  if [[ "$preferred" =~ ^[0-9]+$ ]] && port_free "$preferred"; then echo "$preferred"; return 0; fi
  for ((p = lo; p <= hi; p++)); do
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  die "no free port in $lo..$hi on 127.0.0.1"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

pg_running() { [[ -f "$PGDATA/PG_VERSION" ]] && as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }
pg_live_port() { sed -n 4p "$PGDATA/postmaster.pid" 2>/dev/null || true; }
psql_local() { "$PG_BIN/psql" -h 127.0.0.1 -p "$1" -U "$DB_USER" -X -q -t -A -v ON_ERROR_STOP=1 "${@:2}"; }

# The cluster folder must be reachable by the postgres user. When the checkout sits below a folder
# postgres cannot enter (e.g. /root/…), the cluster lives in /var/tmp and .local/pg links to it.
prepare_pg_dir() {
  mkdir -p "$LOCAL"
  if [[ $EUID -ne 0 ]]; then mkdir -p "$PG_DIR"; return 0; fi
  if [[ ! -e "$PG_DIR" && ! -L "$PG_DIR" ]]; then
    if runuser -u postgres -- test -x "$LOCAL" 2>/dev/null; then
      mkdir -p "$PG_DIR"
    else
      local elsewhere
      elsewhere="/var/tmp/civic-etl-pg-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
      say "postgres cannot enter $LOCAL: cluster in $elsewhere (linked from .local/pg)"
      mkdir -p "$elsewhere"
      chmod 755 "$elsewhere"
      ln -sfn "$elsewhere" "$PG_DIR"
    fi
  fi
  chown postgres:postgres "$(readlink -f "$PG_DIR")"
  pg_paths
}

write_pg_conf() {
  local port=$1 conf="$PGDATA/civic-etl.conf"
  # Settings for a developer/test box. Durability stays ON (fsync, full_page_writes); only
  # synchronous_commit is off: a crash may lose the last few hundred ms of commits, never
  # corrupts the cluster. Memory is kept modest.
  cat >"$conf" <<EOF
# written by scripts/services.sh on each start; edit the script, not this file
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 50
shared_buffers = 128MB
work_mem = 16MB
maintenance_work_mem = 128MB
synchronous_commit = off
max_wal_size = 1GB
log_checkpoints = off
log_min_error_statement = error
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  chown postgres:postgres "$conf" 2>/dev/null || true
  grep -q "civic-etl.conf" "$PGDATA/postgresql.conf" ||
    printf "\ninclude_if_exists = 'civic-etl.conf'\n" >>"$PGDATA/postgresql.conf"
}

start_pg() {
  if external_db; then
    say "PostgreSQL: using DATABASE_URL from the environment (no local cluster)"
    if command -v pg_isready >/dev/null && ! pg_isready -q -t 5 -d "$DATABASE_URL"; then
      warn "the database at DATABASE_URL does not answer (yet)"
    fi
    return 0
  fi
  [[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL 15 is not installed ($PG_BIN/initdb missing)"
  prepare_pg_dir

  local fresh=0
  if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
    rm -rf "$PGDATA" # a previous initdb that did not finish
    say "creating the PostgreSQL cluster in .local/pg (one time)…"
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U "$DB_USER" --auth=trust --encoding=UTF8 --no-locale \
      >"$PG_DIR/initdb.log" 2>&1 || die "initdb failed" "$PG_DIR/initdb.log"
    fresh=1
  fi

  local port
  if pg_running; then
    port="$(pg_live_port)"
    [[ -n "$port" ]] || die "PostgreSQL runs but its port is unknown ($PGDATA/postmaster.pid)"
    echo "$port" >"$PG_PORT_FILE"
    say "PostgreSQL 15 on 127.0.0.1:$port (already running)"
  else
    local previous attempt
    previous="$(cat "$PG_PORT_FILE" 2>/dev/null || true)"
    for attempt in 1 2 3; do
      port="$(choose_port "$previous" "${PG_PORTS[@]}")"
      [[ -n "$previous" && "$port" != "$previous" ]] && say "port $previous is taken: PostgreSQL moves to $port"
      echo "$port" >"$PG_PORT_FILE"
      write_pg_conf "$port"
      # keep the log from growing without bound
      if [[ -f "$PG_LOG" ]] && (($(stat -c %s "$PG_LOG") > 10485760)); then mv -f "$PG_LOG" "$PG_LOG.1"; fi
      if as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t "$START_TIMEOUT" start >/dev/null 2>&1; then
        break
      fi
      # lost a race for the port with another process: try another one
      if ((attempt < 3)) && tail -n 20 "$PG_LOG" 2>/dev/null | grep -q 'could not bind'; then previous=""; continue; fi
      as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
      die "PostgreSQL did not start (time limit ${START_TIMEOUT}s)" "$PG_LOG" 15
    done
    say "PostgreSQL 15 on 127.0.0.1:$port"
  fi

  if [[ "$(psql_local "$port" -d postgres -c "select 1 from pg_database where datname = '$DB_NAME'")" != 1 ]]; then
    psql_local "$port" -d postgres -c "create database $DB_NAME" || die "could not create database $DB_NAME" "$PG_LOG"
    fresh=1
  fi
  if ((fresh)); then
    # prove PostGIS loads, without creating it: the migrations do that, as on RDS
    psql_local "$port" -d "$DB_NAME" -c 'begin; create extension postgis; rollback;' >/dev/null ||
      die "CREATE EXTENSION postgis fails in $DB_NAME" "$PG_LOG"
    say "database $DB_NAME ready (PostGIS available)"
  fi
}

stop_pg() {
  if [[ -f "$PGDATA/PG_VERSION" ]] && pg_running; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t "$START_TIMEOUT" stop >/dev/null 2>&1 ||
      die "PostgreSQL did not stop within ${START_TIMEOUT}s" "$PG_LOG"
    say "PostgreSQL stopped"
  else
    say "PostgreSQL: not running"
  fi
}

# ---------------------------------------------------------------------------------------------
# moto

# any HTTP answer on the port (no curl needed)
http_answers() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 && head -c 5 <&3' _ "$1" 2>/dev/null |
    grep -q '^HTTP/'
}

moto_pid() {
  local pid
  pid="$(cat "$MOTO_PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server &&
    echo "$pid"
  return 0
}

moto_running() {
  local pid port
  pid="$(moto_pid)"
  port="$(cat "$MOTO_PORT_FILE" 2>/dev/null || true)"
  [[ -n "$pid" && -n "$port" ]] && http_answers "$port"
}

kill_moto() {
  local pid i
  pid="$(moto_pid)"
  if [[ -n "$pid" ]]; then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$MOTO_PID_FILE"
  [[ -n "$pid" ]]
}

start_moto() {
  mkdir -p "$MOTO_DIR"
  local port
  if moto_running; then
    port="$(cat "$MOTO_PORT_FILE")"
    say "moto on 127.0.0.1:$port (already running)"
    return 0
  fi
  if [[ -n "$(moto_pid)" ]]; then
    # ours and alive, but not answering within 3 s: a moto busy with another test run's uploads answers
    # late under load, and restarting it would wipe that run's buckets and queues — give it time first
    local waited
    for ((waited = 0; waited < 10; waited++)); do
      sleep 1
      if moto_running; then
        say "moto on 127.0.0.1:$(cat "$MOTO_PORT_FILE") (already running; answered after a wait)"
        return 0
      fi
    done
    warn "moto (pid $(moto_pid)) did not answer for 10 s: restarting it"
  fi
  kill_moto || true # ours, but not answering
  [[ -x "$VENV/bin/moto_server" ]] || die "moto is not installed ($VENV/bin/moto_server missing)"

  local previous attempt pid deadline
  previous="$(cat "$MOTO_PORT_FILE" 2>/dev/null || true)"
  for attempt in 1 2 3; do
    port="$(choose_port "$previous" "${MOTO_PORTS[@]}")"
    echo "$port" >"$MOTO_PORT_FILE"
    [[ -f "$MOTO_LOG" ]] && mv -f "$MOTO_LOG" "$MOTO_LOG.1"
    # own session, no terminal, output to the log: it outlives this script and never holds its pipes
    setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$MOTO_LOG" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$MOTO_PID_FILE"
    deadline=$((SECONDS + START_TIMEOUT))
    while ! http_answers "$port"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        if ((attempt < 3)) && grep -qi 'address already in use' "$MOTO_LOG"; then previous=""; continue 2; fi
        rm -f "$MOTO_PID_FILE"
        die "moto exited during start" "$MOTO_LOG"
      fi
      if ((SECONDS >= deadline)); then
        kill "$pid" 2>/dev/null || true # the process we just started
        rm -f "$MOTO_PID_FILE"
        die "moto did not answer on 127.0.0.1:$port within ${START_TIMEOUT}s" "$MOTO_LOG"
      fi
      sleep 0.3
    done
    say "moto on 127.0.0.1:$port"
    return 0
  done
}

stop_moto() {
  if kill_moto; then say "moto stopped"; else say "moto: not running"; fi
}

# ---------------------------------------------------------------------------------------------
# MariaDB: mariadbd straight from the package (no system service), data in .local/mariadb. As root
# it runs as the `mysql` user the package creates; otherwise as the caller.

if [[ $EUID -eq 0 ]]; then MY_USER_OPT=(--user=mysql); else MY_USER_OPT=(); fi

my_pid() { # the running mariadbd of this checkout, if any
  local pid
  pid="$(cat "$MY_PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$MY_CNF" &&
    echo "$pid"
  return 0
}
my_sql() { mariadb --no-defaults --protocol=socket -S "$MY_SOCK" -u root -N -B "$@" </dev/null; }
my_running() { [[ -n "$(my_pid)" ]] && mariadb-admin --no-defaults --protocol=socket -S "$MY_SOCK" -u root --connect-timeout=3 ping >/dev/null 2>&1; }

# The instance folder must be reachable by the mysql user (as for PostgreSQL: /var/tmp otherwise).
prepare_my_dir() {
  mkdir -p "$LOCAL"
  if [[ $EUID -ne 0 ]]; then mkdir -p "$MY_DIR"; my_paths; return 0; fi
  if [[ ! -e "$MY_DIR" && ! -L "$MY_DIR" ]]; then
    if runuser -u mysql -- test -x "$LOCAL" 2>/dev/null; then
      mkdir -p "$MY_DIR"
    else
      local elsewhere
      elsewhere="/var/tmp/civic-etl-mariadb-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
      say "mysql cannot enter $LOCAL: MariaDB data in $elsewhere (linked from .local/mariadb)"
      mkdir -p "$elsewhere"
      chmod 755 "$elsewhere"
      ln -sfn "$elsewhere" "$MY_DIR"
    fi
  fi
  my_paths
  chown mysql:mysql "$(readlink -f "$MY_DIR")"
}

write_my_conf() {
  # a developer/test box: small buffers; commits flushed to the OS at once, to disk once a second
  cat >"$MY_CNF" <<EOF
# written by scripts/services.sh on each start; edit the script, not this file
[mysqld]
datadir = $MY_DATA
port = $1
bind-address = 127.0.0.1
socket = $MY_SOCK
pid-file = $MY_PID_FILE
log-error = $MY_LOG
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
max_connections = 50
innodb_buffer_pool_size = 64M
innodb_log_file_size = 48M
innodb_flush_log_at_trx_commit = 2
performance_schema = OFF
EOF
}

start_mariadb() {
  if external_mariadb; then
    say "MariaDB: using MARIADB_URL from the environment (no local instance)"
    return 0
  fi
  [[ -x "$MY_BIN" && -x "$MY_INSTALL_DB" ]] || die "MariaDB is not installed ($MY_BIN or $MY_INSTALL_DB missing)"
  prepare_my_dir
  local port
  if my_running; then
    port="$(cat "$MY_PORT_FILE")"
    say "MariaDB on 127.0.0.1:$port (already running)"
    return 0
  fi
  local stale
  stale="$(my_pid)"
  [[ -n "$stale" ]] && { kill -9 "$stale" 2>/dev/null || true; sleep 1; } # ours, but not answering

  if [[ ! -d "$MY_DATA/mysql" ]]; then
    rm -rf "$MY_DATA" # a previous install-db that did not finish
    say "creating the MariaDB data directory in .local/mariadb (one time)…"
    "$MY_INSTALL_DB" --no-defaults --datadir="$MY_DATA" "${MY_USER_OPT[@]}" --auth-root-authentication-method=normal \
      --skip-test-db --skip-name-resolve >"$MY_DIR/install-db.log" 2>&1 </dev/null 9>&- ||
      die "mariadb-install-db failed" "$MY_DIR/install-db.log"
  fi

  local previous attempt pid deadline from
  previous="$(cat "$MY_PORT_FILE" 2>/dev/null || true)"
  for attempt in 1 2 3; do
    port="$(choose_port "$previous" "${MY_PORTS[@]}")"
    [[ -n "$previous" && "$port" != "$previous" ]] && say "port $previous is taken: MariaDB moves to $port"
    echo "$port" >"$MY_PORT_FILE"
    write_my_conf "$port"
    if [[ -f "$MY_LOG" ]] && (($(stat -c %s "$MY_LOG") > 10485760)); then mv -f "$MY_LOG" "$MY_LOG.1"; fi
    from=$(($(stat -c %s "$MY_LOG" 2>/dev/null || echo 0) + 1))
    # own session, no terminal: it outlives this script and never holds its pipes or its lock
    (cd / && exec setsid "$MY_BIN" --defaults-file="$MY_CNF" "${MY_USER_OPT[@]}" </dev/null >>"$MY_DIR/mariadbd.out" 2>&1 9>&-) &
    pid=$!
    deadline=$((SECONDS + START_TIMEOUT))
    until my_running; do
      if [[ -z "$(my_pid)" ]] && ! kill -0 "$pid" 2>/dev/null; then
        # lost a race for the port with another process: try another one
        if ((attempt < 3)) && tail -c +"$from" "$MY_LOG" 2>/dev/null | grep -qiE 'bind on tcp/ip port|address already in use'; then previous=""; continue 2; fi
        die "MariaDB exited during start" "$MY_LOG" 20
      fi
      if ((SECONDS >= deadline)); then
        pid="$(my_pid)"
        [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null || true # the server we just started
        die "MariaDB did not answer on 127.0.0.1:$port within ${START_TIMEOUT}s" "$MY_LOG" 20
      fi
      sleep 0.3
    done
    break
  done
  # TCP access for root from 127.0.0.1 (install-db makes root@localhost, the socket, only), and the database
  my_sql -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; CREATE DATABASE IF NOT EXISTS $MY_DB_NAME CHARACTER SET utf8mb4" ||
    die "could not prepare MariaDB's root@127.0.0.1 and database $MY_DB_NAME" "$MY_LOG"
  say "MariaDB $(my_sql -e 'SELECT VERSION()' | cut -d- -f1) on 127.0.0.1:$port"
}

stop_mariadb() {
  local pid i
  pid="$(my_pid)"
  if [[ -z "$pid" ]]; then say "MariaDB: not running"; return 0; fi
  kill "$pid" 2>/dev/null || true # SIGTERM: a clean shutdown
  for ((i = 0; i < START_TIMEOUT * 5; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null || true
    warn "MariaDB did not stop within ${START_TIMEOUT}s: killed"
  fi
  say "MariaDB stopped"
}

# ---------------------------------------------------------------------------------------------
# .local/env

sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; } # single-quote for the shell

write_env() {
  local db_url how tmp my_url
  if external_mariadb; then my_url="$MARIADB_URL"; else my_url="$(local_my_url)"; fi
  if external_db; then db_url="$DATABASE_URL" how="DATABASE_URL from the environment"; else db_url="$(local_db_url)" how="local cluster in .local/pg"; fi
  tmp="$ENV_FILE.tmp.$$"
  {
    echo "# written by scripts/services.sh start: local services for civic-etl (dummy AWS keys, for moto only)"
    echo "# database: $how"
    echo "export DATABASE_URL=$(sq "$db_url")"
    echo "export MARIADB_URL=$(sq "$my_url")"
    echo "export AWS_ENDPOINT_URL=$(sq "http://127.0.0.1:$(cat "$MOTO_PORT_FILE")")"
    echo "export AWS_REGION='us-east-1'"
    echo "export AWS_ACCESS_KEY_ID='test'"
    echo "export AWS_SECRET_ACCESS_KEY='test'"
  } >"$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------------------------------------

lock() {
  mkdir -p "$LOCAL"
  exec 9>>"$LOCAL/.services.lock"
  if ! flock -n 9; then
    say "waiting for another scripts/services.sh in this checkout…"
    flock -w 1200 9 || die "another scripts/services.sh still holds $LOCAL/.services.lock"
  fi
}

cmd_start() {
  lock
  local t=$SECONDS
  install_all
  start_pg
  start_mariadb
  start_moto
  write_env
  say "environment in .local/env (load with: source .local/env) — ready in $((SECONDS - t)) s"
}

cmd_stop() {
  lock
  stop_moto
  stop_mariadb
  stop_pg
}

cmd_status() {
  local ok=0 port
  if external_db; then
    say "PostgreSQL: DATABASE_URL from the environment"
  elif pg_running; then
    say "PostgreSQL 15: running on 127.0.0.1:$(pg_live_port) (data in .local/pg)"
  else
    say "PostgreSQL 15: stopped"
    ok=3
  fi
  if external_mariadb; then
    say "MariaDB: MARIADB_URL from the environment"
  elif my_running; then
    say "MariaDB: running on 127.0.0.1:$(cat "$MY_PORT_FILE") (pid $(my_pid), data in .local/mariadb)"
  else
    say "MariaDB: stopped"
    ok=3
  fi
  if moto_running; then
    say "moto: running on 127.0.0.1:$(cat "$MOTO_PORT_FILE") (pid $(moto_pid))"
  elif [[ -n "$(moto_pid)" ]]; then
    say "moto: pid $(moto_pid) does not answer (see .local/moto/moto.log)"
    ok=3
  else
    say "moto: stopped"
    ok=3
  fi
  [[ -f "$ENV_FILE" ]] && say "env: .local/env" || say "env: none (run: scripts/services.sh start)"
  return "$ok"
}

cmd_clean() {
  lock
  stop_moto
  [[ -d "$PGDATA" ]] && stop_pg
  stop_mariadb
  if [[ -L "$PG_DIR" ]]; then rm -rf "$(readlink -f "$PG_DIR")"; fi
  if [[ -L "$MY_DIR" ]]; then rm -rf "$(readlink -f "$MY_DIR")"; fi
  rm -rf "$PG_DIR" "$MY_DIR" "$MOTO_DIR" "$ENV_FILE"
  say "removed .local/pg, .local/mariadb, .local/moto and .local/env (the virtualenv .local/venv is kept)"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env)
  [[ -f "$ENV_FILE" ]] || die "no $ENV_FILE yet: run scripts/services.sh start"
  cat "$ENV_FILE"
  ;;
clean) cmd_clean ;;
install) lock && install_all ;;
*)
  echo "usage: $0 start|stop|status|env|clean|install" >&2
  exit 2
  ;;
esac
