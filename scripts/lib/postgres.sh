# Shell helpers for a private, throw-away PostgreSQL cluster on a Unix socket only.
# PostgreSQL refuses to run as root, so when we are root the cluster belongs to `postgres`.

heard_pg_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return
  fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

heard_pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# heard_pg_start DIR: initdb (if needed) and start a cluster whose data and socket live in DIR.
# HEARD_PG_OPTIONS adds server settings (`-c name=value ...`).
heard_pg_start() {
  local dir=$1 bin; bin=$(heard_pg_bindir)
  [ -x "$bin/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; return 1; }
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  chmod 700 "$dir"
  if [ ! -f "$dir/PG_VERSION" ]; then
    heard_pg_as_owner "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  heard_pg_as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=200 -c fsync=off ${HEARD_PG_OPTIONS:-}" start >/dev/null
}

heard_pg_stop() {
  local dir=$1 bin; bin=$(heard_pg_bindir)
  [ -f "$dir/postmaster.pid" ] || return 0
  heard_pg_as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
}

heard_pg_createdb() {
  local dir=$1 name=$2 bin; bin=$(heard_pg_bindir)
  "$bin/psql" -h "$dir" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE \"$name\"" >/dev/null
}

# heard_pg_psql DIR DB SQL: runs SQL as the superuser and prints the result unaligned.
heard_pg_psql() {
  local dir=$1 name=$2 sql=$3 bin; bin=$(heard_pg_bindir)
  "$bin/psql" -h "$dir" -U postgres -d "$name" -qAt -v ON_ERROR_STOP=1 -c "$sql"
}

# heard_pg_setup_roles DIR DB: Heard's two roles (README, "Database roles") and DB owned by the
# owner, on a private cluster (trust auth on its socket). Prints nothing.
heard_pg_setup_roles() {
  local dir=$1 name=$2 bin; bin=$(heard_pg_bindir)
  "$bin/psql" -h "$dir" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 >/dev/null <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'heard_owner') THEN CREATE ROLE heard_owner LOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'heard_runtime') THEN CREATE ROLE heard_runtime NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'heard_app') THEN CREATE ROLE heard_app LOGIN IN ROLE heard_runtime; END IF;
END
\$\$;
ALTER DATABASE "$name" OWNER TO heard_owner;
SQL
}
