#!/usr/bin/env bash
# The whole test suite on a local anvil (ape's foundry provider), then the contract tests again on
# ape's mainnet-fork network, forking a local mainnet stand-in (no internet). Extra args go to both.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
source scripts/env.sh
ape test tests/ --network ethereum:local:foundry "$@"
./scripts/with_upstream.sh ape test tests/ -m contract --network ethereum:mainnet-fork:foundry "$@"
