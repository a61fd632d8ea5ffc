#!/usr/bin/env bash
# The whole test suite on a local anvil (ape's foundry provider), then the contract tests again on
# ape's mainnet-fork network, forking a local mainnet stand-in (no internet). Extra args go to both.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Set-up must never rewrite a tracked file (the lock files above all): the state of the checkout
# before and after it must be the same. On CI's clean clone that means `git status` stays clean.
tracked_state() { git status --porcelain=v1 --untracked-files=all 2>/dev/null; git diff 2>/dev/null; }
before=$(tracked_state)
./scripts/setup.sh
if [[ "$(tracked_state)" != "$before" ]]; then
  echo "test: setup changed the checkout:" >&2
  diff <(echo "$before") <(tracked_state) >&2 || true
  exit 1
fi
source scripts/env.sh
# ape-foundry's anvils, stopped by a signal, leave their persisted states (hundreds of MB each) in
# ~/.foundry/anvil/tmp; remove the ones this run created when it ends. (marginsim's own anvils get a
# private directory that they remove themselves.)
marker=$(mktemp)
trap 'find "$HOME/.foundry/anvil/tmp" -maxdepth 1 -name "anvil-state-*" -newer "$marker" \
        -exec rm -rf {} + 2>/dev/null; rm -f "$marker"' EXIT
ape test tests/ --network ethereum:local:foundry "$@"
./scripts/with_upstream.sh ape test tests/ -m contract --network ethereum:mainnet-fork:foundry "$@"
