# Shell helpers for scripts that run a `heard serve` of their own against a throw-away cluster
# (scripts/lib/postgres.sh): the binary, a free port, a database with Heard's roles, readiness,
# and a tenant with a key.

# heard_binary: the debug `heard` (HEARD_BIN if set, e.g. the one scripts/test already built);
# builds it when missing. Prints its path.
heard_binary() {
  if [ -n "${HEARD_BIN:-}" ]; then echo "$HEARD_BIN"; return; fi
  swift build --product heard >&2 || return 1
  echo "$(swift build --show-bin-path)/heard"
}

heard_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# heard_database DIR DB: DB on the cluster in DIR with Heard's two roles; exports DATABASE_URL
# (runtime role) and MIGRATION_DATABASE_URL (owner) for it.
heard_database() {
  local dir=$1 name=$2
  heard_pg_createdb "$dir" "$name"
  heard_pg_setup_roles "$dir" "$name"
  export DATABASE_URL="postgresql:///$name?host=$dir&user=heard_app"
  export MIGRATION_DATABASE_URL="postgresql:///$name?host=$dir&user=heard_owner"
}

# heard_wait_ready PORT PID LOG [SECONDS]: waits for GET /readyz to answer 200; fails (showing the
# end of LOG) if the process exits or the time runs out.
heard_wait_ready() {
  local port=$1 pid=$2 log=$3 tries=$((${4:-30} * 10))
  for _ in $(seq 1 "$tries"); do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2; echo "heard serve exited during start-up" >&2; return 1; }
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  tail -n 20 "$log" >&2
  echo "heard serve was not ready (GET /readyz) in time" >&2
  return 1
}

# heard_tenant_key BIN SLUG SCOPES: creates the tenant and prints a new key with SCOPES.
heard_tenant_key() {
  local bin=$1 slug=$2 scopes=$3
  "$bin" tenants create "$slug" --name "$slug council" >/dev/null
  "$bin" keys create --tenant "$slug" --name "$slug" --scopes "$scopes" 2>/dev/null
}
