#!/usr/bin/env bash
# The cost of cutover's full-speed batches against one unbatched UPDATE, on
# a scratch server with nothing else running (no load, no replica):
#
#   ./target/release/cutover sandbox start --rows 1000000 --no-replica --durable
#   DATABASE_URL=postgres://postgres@127.0.0.1:PORT/postgres bash assets/bench/batch_cost.sh [RUNS]
#
# It drops and re-creates `users` (1M rows) before every measurement.
#  1. batch_cost.sql in both orders: time per 50k-row batch with the
#     updated-row count in the statement (A), without it (B), and with no
#     upper-key lookup (C);
#  2. RUNS (default 5) pairs, in alternating order, of the unbatched UPDATE and
#     cutover's default backfill, wall time of each, and the ratio of means.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DATABASE_URL:?set DATABASE_URL to a scratch server (cutover sandbox start --no-replica --durable)}"
runs=${1:-5}
export PATH=/usr/lib/postgresql/15/bin:$PATH
cargo build --release --quiet
bin=./target/release/cutover
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/plan.toml" <<'PLAN'
name = "batch cost"
[[phases]]
name = "migrate"
gate = "auto"
[[phases.steps]]
kind = "backfill"
table = "users"
key = "id"
set = "full_name = name"
PLAN
fresh() {
  psql -q "$DATABASE_URL" -c "DROP SCHEMA IF EXISTS cutover CASCADE" 2>/dev/null
  "$bin" sandbox seed --database-url "$DATABASE_URL" --rows 1000000 --replace >/dev/null 2>&1
  psql -q "$DATABASE_URL" -c "ALTER TABLE users ADD COLUMN full_name text" \
    -c "VACUUM ANALYZE users" -c "CHECKPOINT"
}
for order in A,B,C C,B,A; do
  fresh
  echo "per batch, order $order:"
  PGOPTIONS="-c exp.order=$order" psql -q "$DATABASE_URL" -f assets/bench/batch_cost.sql
done
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
upd=(); cut=()
for i in $(seq 1 "$runs"); do
  # A B, then B A: neither always runs second.
  if (( i % 2 )); then pair="update cutover"; else pair="cutover update"; fi
  for what in $pair; do
    fresh
    if [ "$what" = update ]; then
      t=$(secs psql -q "$DATABASE_URL" -c "UPDATE users SET full_name = name")
      upd+=("$t")
    else
      t=$(secs "$bin" run --yes --headless "$dir/plan.toml" --database-url "$DATABASE_URL")
      cut+=("$t")
    fi
    echo "run $i: $what ${t}s"
  done
done
mean() { printf '%s\n' "$@" | awk '{s+=$1} END {printf "%.2f", s/NR}'; }
mu=$(mean "${upd[@]}"); mc=$(mean "${cut[@]}")
echo "unbatched UPDATE mean ${mu}s, cutover mean ${mc}s: cutover at $(awk -v u="$mu" -v c="$mc" 'BEGIN {printf "%.2f", u / c}')x the UPDATE's rows/s"
