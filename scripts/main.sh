#!/usr/bin/env bash
# Run the demo simulation. Extra args go to `marginsim demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
source scripts/env.sh
exec marginsim demo "$@"
