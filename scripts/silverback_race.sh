#!/usr/bin/env bash
# A Silverback bot (examples/silverback/bot.py) races the built-in keepers through a crash, in lockstep:
#   ./scripts/silverback_race.sh [OUT_DIR] [BLOCKS]
# Sets up the project (scripts/setup.sh: Silverback comes from requirements-silverback.lock, an extra
# lock beside the core one), runs `marginsim run scenarios/crash.yaml
# --external silverback`, runs the bot with `silverback run` against the run's anvil, and prints the
# keeper table. The bot is stopped when the run ends; nothing is left running.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/silverback}
BLOCKS=${2:-200}
./scripts/setup.sh >&2
source scripts/env.sh
rm -rf "$OUT"
.venv/bin/marginsim run scenarios/crash.yaml --blocks "$BLOCKS" --external silverback \
  --out "$OUT" --no-progress &
RUN=$!
BOT=
cleanup() {
  local status=$?
  set +e
  [ -n "$BOT" ] && kill "$BOT" 2>/dev/null
  kill "$RUN" 2>/dev/null
  wait 2>/dev/null
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 600); do
  [ -f "$OUT/manifest.json" ] && break
  kill -0 "$RUN" 2>/dev/null || { echo "silverback_race: the run ended before its manifest" >&2; exit 1; }
  sleep 0.2
done
[ -f "$OUT/manifest.json" ] || { echo "silverback_race: the run wrote no manifest" >&2; exit 1; }
RPC=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['rpc_url'])" "$OUT/manifest.json")
MARGINSIM_MANIFEST="$OUT/manifest.json" MARGINSIM_BOT=silverback APE_FOUNDRY_HOST="$RPC" \
  MARGINSIM_TIP_GWEI="${TIP_GWEI:-6}" \
  .venv/bin/silverback run examples.silverback.bot:bot --network ethereum:local:foundry \
  > "$OUT/silverback.log" 2>&1 &
BOT=$!
wait "$RUN"
.venv/bin/python -m simulation.keeper_table "$OUT/summary.json"
