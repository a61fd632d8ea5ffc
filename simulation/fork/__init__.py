"""Fork runs: start anvil on a fork of a real chain and wire the simulation to its real assets.

- The upstream is checked before anvil starts (it answers JSON-RPC, its chain id has a data file in
  `chains/`, the block exists); every failure there is bad input, one message, exit code 2.
- The fork URL is a secret (it usually carries an API key): it is given to anvil and to the probe
  below and never printed, logged or written to an output. Messages name where it came from instead.
- Agents are funded with the real tokens by writing the storage slot `balanceOf` reads (found with
  `eth_createAccessList`, then verified), else by impersonating the chain file's holders.
- Each Chainlink proxy keeps its code, its address and its phase; the aggregator behind it gets
  SimAggregator's code, seeded with the feed's recent rounds, and each simulated round is written
  with `anvil_setStorageAt` as the next aggregator round, so `latestRoundData` on the proxy returns
  the simulated answer in the feed's decimals and round ids, the first being the fork block's own.
- anvil's RPC cache (`storage.json`) is kept under a per-(chain, block, block hash) home directory,
  so a second run at the same block reads the state it fetched before from disk.

The parts: `target` (where from, the probe, the node), `assets` (the chain file checked against the
fork), `funding` (real tokens for the agents), `feeds` (real Chainlink proxies driven by storage writes),
`wiring` (the simulation put on all that)."""

from simulation.fork.assets import check_assets
from simulation.fork.feeds import ForkFeed, install_feeds, refresh_stale_rounds
from simulation.fork.funding import clear_account_code, fund_token
from simulation.fork.target import (
    DEFAULT_CACHE,
    FORK_CACHE_ENV,
    FORK_URL_ENV,
    ForkInputError,
    ForkTarget,
    FundingError,
    Upstream,
    cache_file,
    cache_home,
    fork_node,
    fork_target,
    probe_upstream,
    timed,
)

__all__ = [
    "DEFAULT_CACHE",
    "FORK_CACHE_ENV",
    "FORK_URL_ENV",
    "ForkFeed",
    "ForkInputError",
    "ForkTarget",
    "FundingError",
    "Upstream",
    "cache_file",
    "cache_home",
    "check_assets",
    "clear_account_code",
    "fork_node",
    "fork_target",
    "fund_token",
    "install_feeds",
    "probe_upstream",
    "refresh_stale_rounds",
    "timed",
]
