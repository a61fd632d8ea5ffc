#!/usr/bin/env bash
# The whole test suite on a local anvil (ape's foundry provider), then the contract tests again on
# ape's mainnet-fork network, forking a local mainnet stand-in (no internet). Extra args go to both.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
source scripts/env.sh
# ape-foundry's anvils, stopped by a signal, leave their persisted states (hundreds of MB each) in
# ~/.foundry/anvil/tmp; remove the ones this run created when it ends. (marginsim's own anvils get a
# private directory that they remove themselves.)
marker=$(mktemp)
trap 'find "$HOME/.foundry/anvil/tmp" -maxdepth 1 -name "anvil-state-*" -newer "$marker" \
        -exec rm -rf {} + 2>/dev/null; rm -f "$marker"' EXIT
ape test tests/ --network ethereum:local:foundry "$@"
./scripts/with_upstream.sh ape test tests/ -m contract --network ethereum:mainnet-fork:foundry "$@"
