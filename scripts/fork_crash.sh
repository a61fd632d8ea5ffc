#!/usr/bin/env bash
# The crash scenario on a fork of a local mainnet stand-in (no internet): `marginsim upstream` holds
# ERC-20s and Chainlink proxies at the real mainnet addresses; the run forks it over HTTP, wires the
# vaults to those tokens and proxies, starts at their prices and writes out/crash-fork/. Extra args go
# to `marginsim run` (e.g. --blocks 300); --force replaces the previous run in out/crash-fork. To fork
# a real node instead:
#   MARGINSIM_FORK_URL=https://... marginsim run scenarios/crash.yaml --fork --out out/crash-mainnet
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
exec ./scripts/with_upstream.sh marginsim run scenarios/crash.yaml --fork --out out/crash-fork --force "$@"
