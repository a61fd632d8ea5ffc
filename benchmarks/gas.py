"""Gas table of the vault's entry points, measured on a real anvil with the real contracts, and the
deployed size of each contract against EIP-170's 24,576 bytes.

    python benchmarks/gas.py [--out benchmarks/results/gas.json]

State before measuring is warm and realistic: each feed has a full volatility window of rounds, each
market already has open interest and charges funding (so every trade and liquidation settles it and
stores the market's index: the dearer case), and every measured action is the second of its kind (the
first pays one-time zero-to-non-zero writes of the market's aggregates: `first_open_isolated`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.exceptions import ContractCustomError
from web3.types import RPCEndpoint

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulation.build import MAX_DEPLOYED_SIZE_BYTES, compile_contracts
from simulation.chain import AnvilNode
from simulation.deploy import DEFAULT_MARKETS, SystemSpec, deploy_system
from simulation.errors import ErrorDecoder
from simulation.units import USDC, WAD

PUBLISHED = {
    "aave_v3_liquidationCall": 340_000,
    "aave_v3_borrow": 245_000,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/gas.json"))
    args = ap.parse_args()
    artifacts = compile_contracts()
    with AnvilNode() as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        funded = tuple(dataclasses.replace(m, funding_rate=0.05) for m in DEFAULT_MARKETS)
        d = deploy_system(w3, artifacts, spec=SystemSpec(markets=funded), rpc_url=node.rpc_url)
        table = measure(w3, d)
        # auto-deleveraging needs a deficit: a system with no insurance fund and a tiny pool loss cap
        capped = (
            dataclasses.replace(funded[0], pool_loss_cap=1e-6, impact_coefficient=0),
            funded[1],
        )
        spec = SystemSpec(markets=capped, insurance_usd=0)
        table |= measure_deleverage(
            w3, deploy_system(w3, artifacts, spec=spec, rpc_url=node.rpc_url)
        )
        # the same actions on a vault that values the quote at its feed (a USDC / USD feed at $1)
        at_feed = SystemSpec(markets=funded, quote_feed_usd=1.0, quote_at_feed=True)
        d_feed = deploy_system(w3, artifacts, spec=at_feed, rpc_url=node.rpc_url)
        table |= {f"{k}@quote_feed": v for k, v in measure(w3, d_feed).items()}
    sizes = {
        name: artifacts[name].deployed_size_bytes
        for name in (
            "MarginVault",
            "MarginLiquidator",
            "MarginAdmin",
            "MarginCross",
            "MarginLens",
            "LPPool",
            "OracleAdapter",
            "InsuranceFund",
        )
    }
    result = {
        "gas": table,
        "published": PUBLISHED,
        "size_bytes": sizes,
        "headroom_bytes": {n: MAX_DEPLOYED_SIZE_BYTES - s for n, s in sizes.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


def measure(w3: Web3, d: Any) -> dict[str, int]:
    accounts: list[str] = list(w3.eth.accounts)
    owner, alice, bob, carol, keeper = accounts[:5]
    vault, usdc, weth, wbtc = (d.contract(n) for n in ("MarginVault", "USDC", "WETH", "WBTC"))
    oracle = d.contract("OracleAdapter")
    feeds = [d.contract("FEED_WETH"), d.contract("FEED_WBTC")]
    gas: dict[str, int] = {}
    # 12-second blocks: time passes between any two transactions, so funding accrues at each (the figures
    # do not depend on whether two of them share a wall-clock second)
    w3.provider.make_request(RPCEndpoint("anvil_setBlockTimestampInterval"), [12])

    def advance(seconds: int) -> None:
        """An empty block `seconds` after the latest (the interval goes on from there)."""
        latest = w3.eth.get_block("latest")["timestamp"]
        w3.provider.make_request(RPCEndpoint("evm_mine"), [latest + seconds])

    decoder = ErrorDecoder(d.abis.values())

    def send(fn: Any, sender: str, label: str | None = None) -> Any:
        try:
            r = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
        except ContractCustomError as e:
            raise RuntimeError(
                f"{label or fn.fn_name} reverted: {decoder.decode(str(e.data))}"
            ) from None
        assert r["status"] == 1, label
        if label:
            gas[label] = int(r["gasUsed"])
        return r

    quote_feed = d.contract("FEED_USDC") if "FEED_USDC" in d.addresses else None

    def rounds(eth: float, btc: float) -> None:
        """New rounds, then the volatility cache refreshed, as the oracle agent does (and the quote's
        feed, where it has one, a round at $1)."""
        advance(60)
        for feed, price, asset in ((feeds[0], eth, weth), (feeds[1], btc, wbtc)):
            send(feed.functions.updateAnswer(int(price * 1e8)), owner)
            send(oracle.functions.cacheVolatility(asset.address), owner, "cache_volatility")
        if quote_feed is not None:
            send(quote_feed.functions.updateAnswer(10**8), owner)

    for i in range(9):  # a full volatility window of small moves
        rounds(3000 + 3 * (i % 2), 60000 + 40 * (i % 2))
    for who in (alice, bob, carol, keeper):
        send(usdc.functions.mint(who, 10_000_000 * USDC), owner)
        send(usdc.functions.approve(vault.address, 2**255), who)
        send(weth.functions.mint(who, 100 * WAD), owner)
        send(weth.functions.approve(vault.address, 2**255), who)
    send(vault.functions.openIsolated(0, WAD, 600 * USDC), bob, "first_open_isolated")
    send(vault.functions.openIsolated(1, -WAD // 10, 1000 * USDC), bob)
    send(vault.functions.openIsolated(0, 2 * WAD, 1000 * USDC), alice, "open_isolated")
    pid = vault.functions.nextPositionId().call() - 1
    send(vault.functions.modifyIsolated(pid, WAD), alice, "increase_isolated")
    send(vault.functions.modifyIsolated(pid, -WAD), alice, "reduce_isolated")
    send(vault.functions.addIsolatedMargin(pid, 100 * USDC), alice, "add_margin_isolated")
    send(vault.functions.removeIsolatedMargin(pid, 50 * USDC), alice, "remove_margin_isolated")
    send(vault.functions.closeIsolated(pid), alice, "close_isolated")

    send(vault.functions.depositCollateral(usdc.address, 5_000 * USDC), carol)
    send(vault.functions.depositCollateral(weth.address, 2 * WAD), carol, "deposit_collateral")
    send(vault.functions.tradeCross(0, WAD), carol, "trade_cross_open")
    send(vault.functions.tradeCross(1, -WAD // 20), carol, "trade_cross_second_market")
    send(vault.functions.tradeCross(0, WAD // 2), carol, "trade_cross_increase")
    send(vault.functions.tradeCross(0, -WAD // 2), carol, "trade_cross_reduce")
    send(vault.functions.withdrawCollateral(usdc.address, 100 * USDC), carol, "withdraw_collateral")

    # liquidations: a 15x isolated long and a cross account, then a 10 % drop
    send(vault.functions.openIsolated(0, 10 * WAD, 2_000 * USDC), alice)
    victim = vault.functions.nextPositionId().call() - 1
    send(vault.functions.openIsolated(0, 10 * WAD, 2_000 * USDC), bob)
    victim2 = victim + 1
    send(vault.functions.depositCollateral(usdc.address, 1_000 * USDC), keeper)
    send(vault.functions.depositCollateral(weth.address, WAD), keeper)
    send(vault.functions.tradeCross(0, 10 * WAD), keeper)
    rounds(2720, 60000)
    send(vault.functions.liquidateIsolated(victim), keeper, "liquidate_isolated")
    send(vault.functions.liquidateIsolated(victim2), carol, "liquidate_isolated_again")
    send(vault.functions.liquidateCross(keeper), alice, "liquidate_cross")
    owed = next((w for w in (alice, bob) if vault.functions.claimableQuote(w).call()), None)
    if owed:
        send(vault.functions.claimRemainder(), owed, "claim_remainder")

    # LP deposit (locks the shares for the cooldown), and the owner's timelocked parameter change
    pool = d.contract("LPPool")
    send(usdc.functions.approve(pool.address, 2**255), carol)
    send(pool.functions.deposit(100_000 * USDC, carol), carol, "lp_deposit")
    params = list(vault.functions.market(0).call()[5])
    params[1] += params[1] // 4  # maintenance up a quarter: within one step
    send(vault.functions.setMarketParams(0, params), owner, "set_market_params_queue")
    advance(86_400)
    rounds(2720, 60000)  # applying stores the funding accrued so far: it reads a fresh price
    send(vault.functions.applyMarketParams(0), owner, "apply_market_params")

    # an LP exit in two steps (the cooldown and the day above have passed; fresh rounds for the valuation)
    send(
        pool.functions.requestRedeem(pool.functions.balanceOf(carol).call() // 2),
        carol,
        "lp_request_exit",
    )
    advance(pool.functions.exitDelay().call())
    rounds(2720, 60000)
    send(pool.functions.claimRedeem(carol), carol, "lp_claim_exit")
    # carol's cross account (long ETH, short BTC) switches to portfolio margin, then grows a leg
    send(vault.functions.setPortfolioMargin(True), carol, "set_portfolio_margin")
    send(vault.functions.tradeCross(0, WAD // 2), carol, "trade_cross_increase_portfolio")
    return gas


def measure_deleverage(w3: Web3, d: Any) -> dict[str, int]:
    """A $2M long at 19x goes 15 % under with no insurance fund: past the pool's cap, its bad debt is owed by
    an isolated and a cross short, each then deleveraged."""
    owner, alice, bob, carol, keeper = list(w3.eth.accounts)[:5]
    vault, usdc, feed = (d.contract(n) for n in ("MarginVault", "USDC", "FEED_WETH"))
    gas: dict[str, int] = {}
    w3.provider.make_request(RPCEndpoint("anvil_setBlockTimestampInterval"), [12])
    for who in (alice, bob, carol):
        w3.eth.wait_for_transaction_receipt(
            usdc.functions.mint(who, 10_000_000 * USDC).transact({"from": owner})
        )
        w3.eth.wait_for_transaction_receipt(
            usdc.functions.approve(vault.address, 2**255).transact({"from": who})
        )

    def send(fn: Any, sender: str, label: str | None = None) -> None:
        r = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
        assert r["status"] == 1, label
        if label:
            gas[label] = int(r["gasUsed"])

    send(vault.functions.openIsolated(0, -100 * WAD, 100_000 * USDC), bob)
    short_id = vault.functions.nextPositionId().call() - 1
    send(vault.functions.depositCollateral(usdc.address, 100_000 * USDC), carol)
    send(vault.functions.tradeCross(0, -100 * WAD), carol)
    longs = []
    for _ in range(2):  # the second liquidation is measured: the deficit's slots are warm
        send(vault.functions.openIsolated(0, 333 * WAD, 55_000 * USDC), alice)
        longs.append(vault.functions.nextPositionId().call() - 1)
    send(feed.functions.updateAnswer(2550 * 10**8), owner)
    send(vault.functions.liquidateIsolated(longs[0]), keeper)
    send(
        vault.functions.liquidateIsolated(longs[1]), keeper, "liquidate_isolated_into_deleveraging"
    )
    assert vault.functions.deleverageDeficit(0, False).call() > 0
    send(vault.functions.deleverageIsolated(short_id), keeper, "deleverage_isolated")
    send(vault.functions.deleverageCross(carol, 0), keeper, "deleverage_cross")
    return gas


if __name__ == "__main__":
    raise SystemExit(main())
