"""The liquidation rate limit: a market's per-block cap on liquidated notional (`liquidationCapUsd`).

A third market on WETH is created with the ETH market's terms, no buffer, and a cap; liquidations in one
block are sent with the chain's automine off and mined together, as keepers' transactions land."""

from __future__ import annotations

import ape
import pytest
from conftest import BTC, ETH, USDC_UNIT, WAD
from eth_utils import keccak
from test_liquidation import expected_isolated, open_long

pytestmark = pytest.mark.usefixtures("no_buffer")

CAP_ERROR = "0x" + keccak(text="LiquidationCapReached(uint256,uint256)")[:4].hex()
NO_CAP = 2**256 - 1


def _capped_market(vault, owner, weth, cap_usd: int) -> int:
    params = list(vault.market(ETH).params)
    params[11] = 0  # maxBufferWad: static ratios
    params[13] = cap_usd
    tx = vault.createMarket(weth, params, sender=owner)
    return vault.MarketCreated.from_receipt(tx)[0].marketId


def _one_block(txs: list[tuple[object, str, object]]) -> list[dict]:
    """Send each (contract method, sender, args) unmined, mine them in one block, return the receipts."""
    w3 = ape.chain.provider.web3
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        hashes = []
        for method, sender, args in txs:
            data = method.encode_input(*args)
            tx = {
                "from": sender,
                "to": method.contract.address,
                "data": data.hex(),
                "gas": 3_000_000,
            }
            hashes.append(w3.eth.send_transaction(tx))
        w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    receipts = [w3.eth.get_transaction_receipt(h) for h in hashes]
    assert len({r["blockNumber"] for r in receipts}) == 1
    return receipts


def _cut_to(cap: int, closed_size: int, price_wad: int) -> bool:
    """A close cut to the room `cap` (USD wad): equal to it but for the fraction's rounding (down, a few
    wei of USD) and the size's (up, at most one unit of size)."""
    closed = abs(closed_size) * price_wad // WAD
    return cap - 10**6 <= closed <= cap + price_wad // WAD + 1


def _revert_data(tx_hash) -> str:
    w3 = ape.chain.provider.web3
    trace = w3.provider.make_request(
        "debug_traceTransaction", [tx_hash.hex(), {"tracer": "callTracer"}]
    )
    return trace["result"].get("output", "")


def test_the_room_is_the_cap_in_a_fresh_block_and_unlimited_without_one(vault, owner, weth):
    capped = _capped_market(vault, owner, weth, 5_000 * WAD)
    assert vault.liquidationRoomUsd(capped) == 5_000 * WAD
    assert vault.liquidationRoomUsd(ETH) == NO_CAP == vault.liquidationRoomUsd(BTC)
    params = list(vault.market(ETH).params)
    params[13] = 10**30 + 1
    with ape.reverts(vault.ParamOutOfBounds):
        vault.createMarket(weth, params, sender=owner)


def test_a_block_liquidates_no_more_than_the_cap_and_the_rest_waits(
    vault, pool, usdc, weth, owner, alice, bob, carol, keeper, fund, eth_feed, set_price
):
    # the planned partial close of a 1 ETH long on $600 at 2,470 (the reference model of the plan)
    probe = open_long(vault, usdc, carol, fund, WAD, 600)
    set_price(eth_feed, 2470)
    _, planned, *_ = expected_isolated(vault, pool, probe, 2470 * WAD)
    planned_usd = planned * 2470  # USD wad
    set_price(eth_feed, 3000)
    cap = planned_usd // 2  # room for half of one liquidation's plan
    market = _capped_market(vault, owner, weth, cap)
    a = open_long(vault, usdc, alice, fund, WAD, 600, market=market)
    b = open_long(vault, usdc, bob, fund, WAD, 600, market=market)
    set_price(eth_feed, 2470)
    liquidate = vault.liquidateIsolated
    first, second = _one_block(
        [(liquidate, keeper.address, (a,)), (liquidate, keeper.address, (b,))]
    )
    assert first["status"] == 1 and second["status"] == 0
    assert _revert_data(second["transactionHash"]).startswith(CAP_ERROR)
    ev = vault.IsolatedLiquidated.from_receipt(
        ape.chain.get_receipt(first["transactionHash"].hex())
    )[0]
    # the close was cut to the room, and is partial
    assert planned_usd > cap and _cut_to(cap, ev.closedSize, ev.priceWad)
    assert not ev.full and vault.position(a).size == WAD - ev.closedSize
    # the next block has a fresh room: the waiting position goes, cut to the cap again
    tx = vault.liquidateIsolated(b, sender=keeper)
    ev_b = vault.IsolatedLiquidated.from_receipt(tx)[0]
    assert _cut_to(cap, ev_b.closedSize, ev_b.priceWad)


def test_a_cross_liquidation_closes_every_leg_by_the_capped_fraction(
    vault, usdc, weth, owner, alice, keeper, fund, eth_feed, set_price
):
    cap = 500 * WAD
    market = _capped_market(vault, owner, weth, cap)
    fund(usdc, alice, 1_000)
    vault.depositCollateral(usdc, 1_000 * USDC_UNIT, sender=alice)
    vault.tradeCross(market, 3 * WAD, sender=alice)  # $9,000 in the capped market
    vault.tradeCross(BTC, WAD // 20, sender=alice)  # $3,000 of BTC, uncapped
    set_price(eth_feed, 2750)
    tx = vault.liquidateCross(alice, sender=keeper)
    legs = {e.marketId: e for e in vault.CrossPositionLiquidated.from_receipt(tx)}
    assert set(legs) == {market, BTC}
    assert _cut_to(cap, legs[market].closedSize, legs[market].priceWad)
    fraction = vault.CrossLiquidated.from_receipt(tx)[0].fractionWad
    # the uncapped leg closed by the same (capped) fraction, well under the account's own fraction
    btc_fraction = abs(legs[BTC].closedSize) * WAD // (WAD // 20)
    eth_fraction = abs(legs[market].closedSize) * WAD // (3 * WAD)
    assert abs(btc_fraction - eth_fraction) <= 20 and eth_fraction < fraction
    assert vault.crossPosition(alice, market).size == 3 * WAD - legs[market].closedSize


# --------------------------------------------------------------------------- a run with caps


def test_keepers_respect_the_cap_and_the_queue_shows_what_waits(tmp_path):
    """The crash with $20,000 a block of liquidations per market: no block closes more than the cap in a
    market (up to rounding), a queue builds up, and everything liquidatable still gets liquidated."""
    import pandas as pd
    from marginsim_cli import ROOT
    from run_events import notional_per_block_and_market

    from simulation.runner import run_scenario
    from simulation.scenario import Scenario, load_scenario

    cap = 20_000
    data = load_scenario(ROOT / "scenarios" / "crash.yaml").model_dump()
    capped = {"liquidation_cap_usd": cap}
    data["protocol"]["markets"] = {"ETH-USD": capped, "BTC-USD": capped}
    sc = Scenario.model_validate({**data, "blocks": 500})
    code, summary = run_scenario(sc, tmp_path, progress=False, backend="revm")
    assert code == 0 and summary["status"] == "completed"
    per_block = notional_per_block_and_market(tmp_path)
    assert per_block and max(per_block.values()) <= cap * (1 + 1e-9)
    assert sum(v > cap * 0.99 for v in per_block.values()) > 0  # the cap binds in some blocks
    ts = pd.read_parquet(tmp_path / "timeseries.parquet")
    assert summary["liquidation_queue_peak_usd"] == pytest.approx(
        ts["liquidation_queue_usd"].max(), abs=0.01
    )
    assert summary["liquidation_queue_peak_usd"] > cap  # more waited than one block may close
    assert summary["invariants"]["violations"] == 0
