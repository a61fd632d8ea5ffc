"""Fixed-point units shared by the reference model, the agents, the engine and the scripts."""

WAD = 10**18
"""18-decimal fixed point: prices and USD values on chain."""
USDC = 10**6
"""One unit of the 6-decimal quote token."""
GWEI = 10**9
MAX_UINT = 2**256 - 1

QUOTE_FEED_BOUNDS_USD = (0.5, 2.0)
"""The local quote feed's bounds: those of mainnet's USDC / USD in chains/mainnet.yaml (a price outside
them reverts, and with it everything the vault values the quote at)."""
