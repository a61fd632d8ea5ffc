#!/usr/bin/env bash
# Run the test suite on a local anvil (ape's foundry provider). Extra args go to `ape test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
source scripts/env.sh
exec ape test tests/ --network ethereum:local:foundry "$@"
