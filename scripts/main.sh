#!/usr/bin/env bash
# The main job: run the default scenario (scenarios/calm.yaml) and write its report under out/calm.
# Extra args go to `marginsim run` (e.g. --seed 3 --blocks 300). It passes --force: out/calm holds the
# previous run of this command, which a second run replaces (marginsim refuses that without --force).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
source scripts/env.sh
exec marginsim run scenarios/calm.yaml --out out/calm --force "$@"
