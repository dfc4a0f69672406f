#!/usr/bin/env bash
# Benchmark of the reference server with many users (issue 19; a benchmark, not a test), with
# examples/users_bench.rs, for SQLite and then PostgreSQL:
#   1. Isolation of pull cost: two databases, seeded in-process through the Storage trait with
#      --small and --large records of --users other users (JWT users, private spaces), each plus
#      the target user's --docs documents spread through the change sequence. The target (its own
#      JWT) pulls its documents from cursor zero, alternately from the small and the large
#      database, --rounds rounds of --reps pulls: first in-process (Storage::pull, no HTTP), then
#      over HTTP from two server instances, one per database. Prints p50/p95 of each and the
#      large/small ratio, then the pull query's plan (and, on SQLite, its work on both).
#   2. Throughput with many users: --tp-users JWT users served by --clients concurrent
#      connections, each cycling over its users (push --batch puts, pull until caught up), for
#      --seconds, against the server holding the large database.
# The load averages (uptime) are printed before each step: the machine may be shared.
#
# PostgreSQL is a throwaway cluster (see lib.sh) with its durable defaults, and the seeded
# databases are ANALYZEd (as autovacuum would soon); SQLite runs in WAL mode with
# synchronous = NORMAL and without statistics, as the server opens it. Everything this script starts is stopped
# when it exits; all traffic stays on 127.0.0.1. The HS256 secret is random per run.
#
# Usage: server/bench/users.sh [--backend both|sqlite|postgres] [--small 1000] [--large 200000]
#          [--users 1000] [--docs 100] [--rounds 10] [--reps 200]
#          [--tp-users 1000] [--clients 32] [--seconds 20] [--batch 10] [--out FILE]
#   --backend: which storage to run (default both).
#   --small, --large: other users' records in the two databases; --users: how many users own them.
#   --docs: the target user's documents (the pull's limit too).
#   --rounds, --reps: the isolation comparison's rounds and pulls per database per round.
#   --tp-users, --clients, --seconds, --batch: the throughput step.
#   --out FILE: append every step's JSON line to FILE.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

backend=both small=1000 large=200000 users=1000 docs=100 rounds=10 reps=200
tp_users=1000 clients=32 seconds=20 batch=10 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend=$2; shift 2 ;;
    --small) small=$2; shift 2 ;;
    --large) large=$2; shift 2 ;;
    --users) users=$2; shift 2 ;;
    --docs) docs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --tp-users) tp_users=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) sed -n '/^# Usage/,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
case "$backend" in both|sqlite|postgres) ;; *) echo "--backend: both, sqlite or postgres" >&2; exit 2 ;; esac

cargo build -q -p wharf-server --profile server --bin wharf-server --example users_bench
# shellcheck source=server/bench/lib.sh
. server/bench/lib.sh
bench_bin=$target_dir/server/examples/users_bench

WHARF_JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export WHARF_JWT_SECRET

# step NAME COMMAND…: runs a users_bench step, printing the load first and keeping its JSON line.
step() {
  local name=$1; shift
  echo "== $name (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$bench_bin" "$@" | tee "$work/$name.out"
  if [ -n "$out" ]; then
    printf '{"step": "%s", "loadavg": "%s", "result": %s}\n' "$name" "$(cut -d' ' -f1-3 /proc/loadavg)" \
      "$(tail -1 "$work/$name.out")" >>"$out"
  fi
}

# The server's pull statement (postgres.rs, PULL, copied here) on database $1, as a custom plan
# and as the generic plan PostgreSQL may switch a prepared statement to after five executions.
explain_pg() {
  psql -d "$1" <<SQL
PREPARE pull(int8, int8, text[]) AS
    SELECT h.value, l.value, r.collection, r.key, r.value, r.version, r.hlc, r.seq
    FROM wharf_meta h
    JOIN wharf_meta l ON l.name = 'last_seq'
    LEFT JOIN LATERAL (
        SELECT p.* FROM unnest(\$3::text[]) AS sp(space), LATERAL (
            SELECT collection, key, value, version, hlc, seq FROM wharf_records
            WHERE space = sp.space AND seq > \$1
            ORDER BY seq LIMIT \$2
        ) p
        ORDER BY p.seq LIMIT \$2
    ) r ON true
    WHERE h.name = 'compacted_through'
    ORDER BY r.seq;
SELECT '$1' AS database, count(*) AS records, count(DISTINCT space) AS spaces,
    (SELECT n_distinct FROM pg_stats WHERE tablename = 'wharf_records' AND attname = 'space') AS planner_spaces
FROM wharf_records;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE pull(0, $((docs + 1)), ARRAY['user:bench-target']);
SET plan_cache_mode = force_generic_plan;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE pull(0, $((docs + 1)), ARRAY['user:bench-target']);
SQL
}

seed_args=(--users "$users" --docs "$docs")
pull_args=(--rounds "$rounds" --reps "$reps" --docs "$docs")
tp_args=(--users "$tp_users" --clients "$clients" --seconds "$seconds" --batch "$batch")

if [ "$backend" != postgres ]; then
  step sqlite-seed-small seed --database "$work/small.sqlite" --others "$small" "${seed_args[@]}"
  step sqlite-seed-large seed --database "$work/large.sqlite" --others "$large" "${seed_args[@]}"
  step sqlite-isolation-store isolation --store "sqlite:$work/small.sqlite" --store "sqlite:$work/large.sqlite" \
    "${pull_args[@]}"
  start_server --database "$work/small.sqlite"
  small_url=$server_url
  start_server --database "$work/large.sqlite"
  large_url=$server_url
  step sqlite-isolation-http isolation --target "$small_url" --target "$large_url" "${pull_args[@]}"
  stop_servers
  echo "== sqlite: the pull query's plan and work on the small and the large database"
  "$bench_bin" explain --database "$work/small.sqlite" --docs "$docs" | sed -n 1p
  "$bench_bin" explain --database "$work/large.sqlite" --docs "$docs" | sed -n 1p
  start_server --database "$work/large.sqlite"
  step sqlite-throughput throughput --target "$server_url" "${tp_args[@]}"
  stop_servers
fi

if [ "$backend" != sqlite ]; then
  start_pg_cluster
  psql -c "CREATE DATABASE small" -c "CREATE DATABASE large"
  small_db="postgres://postgres@127.0.0.1:$pg_port/small"
  large_db="postgres://postgres@127.0.0.1:$pg_port/large"
  step postgres-seed-small seed --database-url "$small_db" --others "$small" "${seed_args[@]}"
  step postgres-seed-large seed --database-url "$large_db" --others "$large" "${seed_args[@]}"
  # Planner statistics, as autovacuum's analyze gathers them within a minute of such a load:
  # without them PostgreSQL guesses the selectivity of `space = …`, and the plan measured would
  # not be the one a running server gets.
  psql -d small -c "ANALYZE"
  psql -d large -c "ANALYZE"
  step postgres-isolation-store isolation --store "$small_db" --store "$large_db" "${pull_args[@]}"
  start_server --database-url "$small_db"
  small_url=$server_url
  start_server --database-url "$large_db"
  large_url=$server_url
  step postgres-isolation-http isolation --target "$small_url" --target "$large_url" "${pull_args[@]}"
  stop_servers
  echo "== postgres: the pull query's plan on the small and the large database"
  explain_pg small
  explain_pg large
  start_server --database-url "$large_db"
  step postgres-throughput throughput --target "$server_url" "${tp_args[@]}"
  stop_servers
fi

machine_line
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
