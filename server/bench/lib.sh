# Helpers shared by the server benchmarks (run.sh, users.sh); sourced, not run, from the
# repository root. It creates a temporary directory ($work), stops everything it starts (server
# instances, the PostgreSQL cluster) and deletes $work when the sourcing script exits.
#
# Binaries are looked up under $CARGO_TARGET_DIR (default: target), where `cargo build
# --profile server` puts them.

target_dir=${CARGO_TARGET_DIR:-target}
server_bin=$target_dir/server/wharf-server

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pg_bin" ] || { echo "bench: PostgreSQL not installed (scripts/setup.sh installs it)" >&2; exit 1; }
as_pg=()
[ "$(id -u)" -eq 0 ] && as_pg=(runuser -u postgres --)

work=$(mktemp -d /tmp/wharf-bench-XXXXXX)
chmod 755 "$work"
mkdir "$work/www"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -f "$work/pg/data/postmaster.pid" ]; then
    "${as_pg[@]}" "$pg_bin/pg_ctl" stop -D "$work/pg/data" -m fast -w >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts a server instance with the given arguments (in this shell, so its pid is recorded); sets
# $server_url to its base URL.
server_url=""
start_server() {
  local log="$work/server-$RANDOM.log"
  "$server_bin" --addr 127.0.0.1:0 --www "$work/www" --pkg "$work/www" "$@" >"$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do
    server_url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" 2>/dev/null | head -1 || true)
    [ -z "$server_url" ] || return 0
    sleep 0.05
  done
  echo "bench: the server did not start:" >&2
  cat "$log" >&2
  exit 1
}

stop_servers() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}

# Starts the throwaway PostgreSQL cluster (durable defaults: fsync and synchronous_commit on) on
# a free loopback port; sets $pg_port and defines psql.
start_pg_cluster() {
  mkdir -p "$work/pg"
  [ ${#as_pg[@]} -eq 0 ] || chown postgres:postgres "$work/pg"
  "${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U postgres -A trust -E UTF8 --locale=C >/dev/null
  pg_port=$(free_port)
  "${as_pg[@]}" "$pg_bin/pg_ctl" start -D "$work/pg/data" -w -l "$work/pg/log" \
    -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null
}
psql() { "$pg_bin/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }

machine_line() {
  echo "== machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), PostgreSQL $("$pg_bin/postgres" --version | awk '{ print $3 }')"
}
