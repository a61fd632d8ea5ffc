"""On ape's mainnet-fork network (`./scripts/test.sh` runs the contract tests there a second time,
forking a local mainnet stand-in): the fork really reads its upstream, and the protocol's oracle
adapter works against the real Chainlink proxy and the real USDC at their mainnet addresses."""

from __future__ import annotations

import ape
import pytest
from conftest import project_at

from simulation.chains import chain_for

ERC20_DECIMALS = [
    {
        "type": "function",
        "name": "decimals",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
        "stateMutability": "view",
    }
]


pytestmark = pytest.mark.fork_network  # collected only on a fork network (tests/conftest.py)


@pytest.fixture
def on_fork():
    assert "fork" in ape.chain.provider.network.name
    return chain_for(ape.chain.chain_id)


def test_the_fork_reads_the_upstreams_tokens_and_feeds(on_fork, system, oracle, owner):
    w3 = ape.chain.provider.web3
    usdc = on_fork.tokens["USDC"]
    assert len(w3.eth.get_code(usdc.address)) > 0, "no USDC at its mainnet address on the fork"
    token = w3.eth.contract(address=usdc.address, abi=ERC20_DECIMALS)
    assert token.functions.decimals().call() == usdc.decimals == 6
    eth = on_fork.feeds["ETH"]
    proxy = project_at("MockFeedProxy", eth.proxy)  # the ABI subset every Chainlink proxy has
    round_id, answer, _, updated_at, _ = proxy.latestRoundData()
    assert answer > 0 and updated_at > 0 and round_id >> 64 >= 1, "phase-encoded round id"
    # Wire the protocol's adapter to the real proxy (a long heartbeat: the fork's clock runs on).
    # A fresh asset key: its first feed applies at once (replacing WETH's would wait the timelock).
    asset = ape.project.MockERC20.deploy("Fork ETH", "FETH", 18, owner, sender=owner)
    oracle.setFeed(asset, eth.proxy, eth.decimals, 2**32 - 1, 8, 10**18, 10**24, sender=owner)
    assert oracle.priceWad(asset) == answer * 10 ** (18 - eth.decimals)
