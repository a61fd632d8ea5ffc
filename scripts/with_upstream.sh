#!/usr/bin/env bash
# Run a command with a local mainnet stand-in up (`marginsim upstream`: chain id 1, the real token and
# Chainlink proxy addresses of chains/mainnet.yaml) and MARGINSIM_FORK_URL pointing at it; the
# stand-in and the command are both stopped on every way out (Ctrl-C, SIGTERM, a failure). Example:
#   ./scripts/with_upstream.sh marginsim run scenarios/crash.yaml --fork --out out/crash-fork
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
port=$(python -c "from simulation.chain import free_port; print(free_port())") || exit 1
log=$(mktemp)
upstream="" child=""
cleanup() {
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
  [ -n "$upstream" ] && kill -TERM "$upstream" 2>/dev/null && wait "$upstream" 2>/dev/null
  rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
marginsim upstream --port "$port" >"$log" 2>&1 &
upstream=$!
for _ in $(seq 1 600); do
  grep -q "stand-in" "$log" && break
  if ! kill -0 "$upstream" 2>/dev/null; then cat "$log" >&2; exit 1; fi
  sleep 0.1
done
grep -q "stand-in" "$log" || { echo "the upstream did not start within 60 s" >&2; cat "$log" >&2; exit 1; }
cat "$log"
export MARGINSIM_FORK_URL="http://127.0.0.1:$port"
"$@" &
child=$!
wait "$child"
status=$?
child=""
exit "$status"
