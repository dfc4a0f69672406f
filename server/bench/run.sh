#!/usr/bin/env bash
# Load test of the reference server (a benchmark, not a test): runs examples/loadgen.rs against
#   1. SQLite (a file, WAL, synchronous=NORMAL),
#   2. PostgreSQL with 1 server instance,
#   3. PostgreSQL with 3 server instances (clients spread over them round-robin),
# and prints one summary line per scenario (and the JSON lines to bench/results if asked).
#
# PostgreSQL is a throwaway cluster from Debian's package (initdb in a temporary directory, a
# free loopback port, run as the postgres user when we are root) with its durable defaults
# (fsync on, synchronous_commit on). Everything this script starts is stopped when it exits.
# All traffic stays on 127.0.0.1.
#
# Usage: server/bench/run.sh [--clients 32] [--seconds 20] [--batch 10] [--no-pull] [--out FILE]
#   --no-pull: clients only push (the write path alone); by default each client pulls everything
#   after each of its pushes, as a client does on every poke.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

clients=32 seconds=20 batch=10 out="" extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) clients=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-pull) extra+=(--no-pull); shift ;;
    *) echo "usage: $0 [--clients N] [--seconds S] [--batch B] [--no-pull] [--out FILE]" >&2; exit 2 ;;
  esac
done

cargo build -q -p wharf-server --profile server --bin wharf-server --example loadgen
server_bin=target/server/wharf-server
loadgen_bin=target/server/examples/loadgen

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

# Starts a server instance with the given storage arguments (in this shell, so its pid is
# recorded); sets $server_url to its base URL.
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

run_load() {
  local name=$1; shift
  local targets=()
  for url in "$@"; do targets+=(--target "$url"); done
  echo "== $name"
  "$loadgen_bin" "${targets[@]}" --clients "$clients" --seconds "$seconds" --batch "$batch" ${extra[@]+"${extra[@]}"} | tee "$work/$name.out"
  if [ -n "$out" ]; then
    printf '{"scenario": "%s", "result": %s}\n' "$name" "$(tail -1 "$work/$name.out")" >>"$out"
  fi
}

# 1. SQLite.
start_server --database "$work/bench.sqlite"
run_load sqlite "$server_url"
stop_servers

# PostgreSQL cluster.
mkdir -p "$work/pg"
[ ${#as_pg[@]} -eq 0 ] || chown postgres:postgres "$work/pg"
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U postgres -A trust -E UTF8 --locale=C >/dev/null
pg_port=$(free_port)
"${as_pg[@]}" "$pg_bin/pg_ctl" start -D "$work/pg/data" -w -l "$work/pg/log" \
  -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null
psql() { "$pg_bin/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }

# 2. PostgreSQL, one instance.
psql -c "CREATE DATABASE bench1"
start_server --database-url "postgres://postgres@127.0.0.1:$pg_port/bench1"
run_load postgres-1 "$server_url"
stop_servers

# 3. PostgreSQL, three instances over one database.
psql -c "CREATE DATABASE bench3"
urls=()
for _ in 1 2 3; do
  start_server --database-url "postgres://postgres@127.0.0.1:$pg_port/bench3"
  urls+=("$server_url")
done
run_load postgres-3 "${urls[@]}"
stop_servers

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), PostgreSQL $("$pg_bin/postgres" --version | awk '{ print $3 }')"
