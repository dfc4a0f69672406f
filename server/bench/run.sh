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
# All traffic stays on 127.0.0.1. Binaries are built into $CARGO_TARGET_DIR (default: target).
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
# shellcheck source=server/bench/lib.sh
. server/bench/lib.sh
loadgen_bin=$target_dir/server/examples/loadgen

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
start_pg_cluster

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

machine_line
