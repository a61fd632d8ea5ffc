"""marginsim: margin vaults on a local anvil chain, driven by Python agents."""
