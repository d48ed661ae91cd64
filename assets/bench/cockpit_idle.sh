#!/usr/bin/env bash
# CPU and memory of the cockpit while `cutover demo` waits at a gate
# (demo traffic running, monitor sampling). Targets: < 3 % of one core,
# < 50 MB resident.
#
#   bash assets/bench/cockpit_idle.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-30}
cargo build --release --quiet
sock="cutover-bench-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true' EXIT
tmux -L "$sock" new-session -d -s bench -x 160 -y 48 "./target/release/cutover demo --rows 1000000"
for _ in $(seq 1 120); do
  tmux -L "$sock" capture-pane -p -t bench | grep -q "WAITING AT GATE" && break
  sleep 1
done
tmux -L "$sock" capture-pane -p -t bench | grep -q "WAITING AT GATE" || { echo "demo never reached its gate"; exit 1; }
pid=$(pgrep -n -x cutover)
tr "\0" " " < "/proc/$pid/cmdline" | grep -q "demo" || { echo "found pid $pid, not the demo"; exit 1; }
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
c0=$(cpu); t0=$(date +%s.%N)
sleep "$secs"
c1=$(cpu); t1=$(date +%s.%N)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
tmux -L "$sock" send-keys -t bench q
awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" -v rss="$rss_kb" 'BEGIN {
  cpu = (c1 - c0) / hz / (t1 - t0) * 100
  printf "cockpit idle at a gate for %.0fs (demo traffic on, monitor sampling):\n", t1 - t0
  printf "  CPU %.2f %% of one core (target 3 %%: ratio %.2f)\n", cpu, cpu / 3
  printf "  RSS %.1f MB (target 50 MB: ratio %.2f)\n", rss / 1024, rss / 1024 / 50
}'
