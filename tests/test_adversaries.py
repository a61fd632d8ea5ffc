"""Adversaries: each decision function on hand-made snapshots (no chain), the PnL measurement as a pure
function, and both shipped scenarios run on a real anvil: on the hardened protocol no adversary ends with a
profit; with every defence off (adversaries_unsafe.yaml) each should."""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from test_agents import (
    ETH,
    TRADER,
    Driven,
    args,
    hist,
    make_encoder,
    make_snap,
    wad,
)

from simulation.abi import ContractAbi
from simulation.adversary_pnl import gas_usd, holdings_usd
from simulation.agents.adversaries import (
    AdversaryContext,
    Griefer,
    JitLp,
    OracleFrontrunner,
    SelfLiquidator,
    round_coming,
)
from simulation.agents.base import MarketTerms
from simulation.runner import run_scenario
from simulation.scenario import AdversaryConfig, OracleConfig, Outage, load_scenario
from simulation.state import NO_LP, CrossView, IsolatedView, LpView, WalletView
from simulation.units import GWEI, WAD

ROOT = Path(__file__).resolve().parent.parent
SECOND = "0x" + "66" * 20
WBTC_T = "0x" + "b1" * 20
TERMS = MarketTerms(wad("0.0005"), wad("0.003"), wad("0.1"), wad("0.01"), wad("0.5"), wad(10))


ABI: dict[str, Any] = {}
"""The vault's and pool's ABIs and the engine's encoder, set by the `ctx` fixture."""


@pytest.fixture(scope="module")
def ctx(artifacts) -> AdversaryContext:
    abis = {
        n: ContractAbi(artifacts[n].abi)
        for n in ("MarginVault", "MockAggregator", "OracleAdapter", "LPPool")
    }
    ABI.update(vault=abis["MarginVault"], pool=abis["LPPool"], encoder=make_encoder(abis))
    return AdversaryContext(
        {"ETH-USD": 0, "BTC-USD": 1},
        {0: TERMS, 1: TERMS},
        OracleConfig(deviation=0.005),
        True,
    )


def cfg(kind: str, **kw: Any) -> AdversaryConfig:
    return AdversaryConfig(name=kind, kind=kind, **kw)


def wallet(**kw: Any) -> WalletView:
    base: dict[str, Any] = dict(tokens_units={}, collateral_units={}, lp=NO_LP, claimable_quote=0)
    return WalletView(**{**base, **kw})


# ------------------------------------------------------------------------------------ decisions


def test_round_coming_follows_the_oracle_rule():
    oracle = OracleConfig(
        deviation=0.005, outages=(Outage(start_block=5, end_block=8, assets=("BTC",)),)
    )
    snap = make_snap()  # on-chain ETH round at 2000
    assert round_coming(oracle, 10, hist((2000.0, 6e4), (2011.0, 6e4)), snap, "ETH") == 1
    assert round_coming(oracle, 10, hist((2000.0, 6e4), (1989.0, 6e4)), snap, "ETH") == -1
    assert round_coming(oracle, 10, hist((2000.0, 6e4), (2009.0, 6e4)), snap, "ETH") == 0  # 0.45 %
    assert round_coming(oracle, 6, hist((2000.0, 6e4), (2000.0, 5e4)), snap, "BTC") == 0  # outage


def test_frontrunner_trades_ahead_of_the_round_and_closes_next_block(ctx):
    fr = Driven(
        OracleFrontrunner(
            cfg("oracle_frontrunner", notional_usd=200_000, priority_fee_gwei=55), (TRADER,), ctx
        ),
        ABI["encoder"],
    )
    up = hist((2000.0, 6e4), (2020.0, 6e4))
    (tx,) = fr.decide(10, make_snap(), up)
    assert (
        tx.kind == "adv_open" and tx.priority_fee_wei == 55 * GWEI > 50 * GWEI
    )  # ahead of the oracle
    mid, size, _ = args(ABI["vault"], "openIsolated", tx)
    assert mid == ETH and abs(size - 100 * WAD) < 10**6  # $200k at the on-chain 2000, long
    assert fr.decide(10, make_snap(), hist((2000.0, 6e4), (2001.0, 6e4))) == []
    pos = IsolatedView(7, TRADER, ETH, size, 20_000 * 10**6, wad(2006))
    (close,) = fr.decide(11, make_snap(positions=[pos]), hist((2000.0, 6e4), (2001.0, 6e4)))
    assert close.kind == "adv_close" and args(ABI["vault"], "closeIsolated", close) == (7,)


def test_jit_wraps_its_trades_in_liquidity_ahead_of_the_round(ctx):
    jit = Driven(
        JitLp(
            cfg("jit_lp", notional_usd=2e6, deposit_usd=4e7, priority_fee_gwei=60), (TRADER,), ctx
        ),
        ABI["encoder"],
    )
    snap = make_snap()
    empty = replace(snap, wallets={TRADER: wallet()})
    assert [t.kind for t in jit.decide(5, empty, hist((2000.0, 6e4)))] == ["adv_margin"]
    funded = replace(snap, wallets={TRADER: wallet(collateral_units={"USDC": 1})})
    assert jit.decide(10, funded, hist((2000.0, 6e4), (1995.0, 6e4))) == []  # no round coming
    txs = jit.decide(10, funded, hist((2000.0, 6e4), (1980.0, 6e4)))
    assert [t.kind for t in txs] == ["adv_deposit", "adv_trade", "adv_withdraw"]
    fees = [t.priority_fee_wei for t in txs]
    assert fees[0] > fees[1] > fees[2] > 50 * GWEI  # all three ahead of the oracle's round
    assert args(ABI["pool"], "deposit", txs[0]) == (40_000_000 * 10**6, TRADER)
    assert args(ABI["pool"], "withdraw", txs[2]) == (40_000_000 * 10**6, TRADER, TRADER)
    _, opened = args(ABI["vault"], "tradeCross", txs[1])
    assert abs(opened + 1000 * WAD) < 10**6  # short $2M at the on-chain 2000, ahead of a down round
    # next block, the round landed: the close, wrapped again while the pool lets it leave at once
    holding = replace(
        funded,
        cross={TRADER: CrossView(0, 0, 0, {ETH: (opened, wad(1999))}, 1)},
    )
    txs = jit.decide(11, holding, hist((1980.0, 6e4)))
    assert [t.kind for t in txs] == ["adv_deposit", "adv_trade", "adv_withdraw"]
    assert args(ABI["vault"], "tradeCross", txs[1]) == (ETH, -opened)
    # where the shares are locked (the cooldown) it only closes, then waits, then asks to exit and claims
    locked = {TRADER: wallet(collateral_units={"USDC": 1}, lp=LpView(5, 0))}
    txs = jit.decide(11, replace(holding, wallets=locked), hist((1980.0, 6e4)))
    assert [t.kind for t in txs] == ["adv_trade"]
    assert jit.decide(12, replace(funded, wallets=locked), hist((1980.0, 6e4), (1950.0, 6e4))) == []
    free = {TRADER: wallet(collateral_units={"USDC": 1}, lp=LpView(5, 5))}
    (request,) = jit.decide(13, replace(funded, wallets=free), hist((2000.0, 6e4)))
    assert args(ABI["pool"], "requestRedeem", request) == (5,)
    waiting = {
        TRADER: wallet(collateral_units={"USDC": 1}, lp=LpView(0, 0, 5, 7, funded.timestamp_s))
    }
    (claim,) = jit.decide(14, replace(funded, wallets=waiting), hist((2000.0, 6e4)))
    assert args(ABI["pool"], "claimRedeem", claim) == (TRADER,)


def test_griefer_deposits_dust_then_margin_then_opens_once(ctx):
    g = Driven(
        Griefer(cfg("griefer", notional_usd=300_000, leverage=10), (TRADER,), ctx), ABI["encoder"]
    )
    txs = g.decide(1, make_snap(), hist((2000.0, 6e4)))
    assert [t.kind for t in txs] == ["adv_dust", "adv_margin", "adv_open"]
    assert args(ABI["vault"], "depositCollateral", txs[0]) == (WBTC_T, 1)  # one satoshi
    assert [t.priority_fee_wei for t in txs] == sorted(
        (t.priority_fee_wei for t in txs), reverse=True
    )
    assert g.decide(2, make_snap(), hist((2000.0, 6e4))) == []


def liquidatable_long(margin_usd: int) -> IsolatedView:
    return IsolatedView(3, TRADER, ETH, 500 * WAD, margin_usd * 10**6, wad(2000))  # $1M long


def self_liquidator_at_1950(ctx: AdversaryContext) -> tuple[Any, Any]:
    """A $1M long from 2000 on $40k at 1950 ($10M trading liquidity), and a self-liquidator owning it:
    the liquidation is full, and at the fill price it leaves equity under the keeper's share."""
    sl = Driven(
        SelfLiquidator(
            cfg("self_liquidator", notional_usd=1e6, leverage=15), (TRADER, SECOND), ctx
        ),
        ABI["encoder"],
    )
    snap = make_snap(eth=1950, maintenance=0.03, positions=[liquidatable_long(40_000)], liq_iso=[3])
    return sl, replace(snap, trading_liquidity_quote=10_000_000 * 10**6)


def test_self_liquidator_closes_when_closing_pays_more(ctx):
    sl, snap = self_liquidator_at_1950(ctx)
    (tx,) = sl.decide(
        10, snap, hist((1950.0, 6e4))
    )  # capped, the keeper's share is what a close pays
    assert tx.kind == "adv_close" and tx.sender == TRADER


def test_self_liquidator_liquidates_from_its_second_address_when_that_pays(ctx):
    unsafe = replace(ctx, liquidation_at_fill_price=False)
    sl, snap = self_liquidator_at_1950(unsafe)
    # at the oracle price the liquidation skips a 1.05 % fill and pays the keeper's full share
    (tx,) = sl.decide(10, snap, hist((1950.0, 6e4)))
    assert tx.kind == "adv_self_liquidate" and tx.sender == SECOND
    assert args(ABI["vault"], "liquidateIsolated", tx) == (3,)
    assert (
        sl.decide(10, make_snap(positions=[liquidatable_long(70_000)]), hist((2000.0, 6e4))) == []
    )


# ------------------------------------------------------------------------------------ measurement


def test_holdings_mark_everything_at_the_oracle_round():
    pos = IsolatedView(1, TRADER, ETH, 10 * WAD, 1_000 * 10**6, wad(1900))  # +$1,000 at 2000
    w = wallet(
        tokens_units={"USDC": 500 * 10**6, "WBTC": 10**8},
        collateral_units={"USDC": 10**6},
        claimable_quote=2 * 10**6,
    )
    snap = replace(make_snap(positions=[pos]), wallets={TRADER: w})
    assert holdings_usd(snap, [TRADER]) == pytest.approx(500 + 60_000 + 1 + 2 + 1_000 + 1_000)
    receipt = {"gasUsed": hex(100_000), "effectiveGasPrice": hex(10 * GWEI)}
    assert gas_usd(receipt, wad(3000)) == pytest.approx(3.0)  # 0.001 ETH at $3,000


# ------------------------------------------------------------------------------------ scenarios


@pytest.fixture(scope="module")
def pnl(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Each shipped scenario run once (a real anvil), its adversaries' PnL by name."""

    @cache
    def run(name: str) -> dict[str, float]:
        code, summary = run_scenario(
            load_scenario(ROOT / "scenarios" / f"{name}.yaml"),
            tmp_path_factory.mktemp(name),
            progress=False,
        )
        assert code == 0 and summary["invariants"]["violations"] == 0
        return {n: a["pnl_usd"] for n, a in summary["adversaries"].items()}

    return run


KINDS = ["jit", "frontrunner", "selfliq", "griefer"]


@pytest.mark.parametrize("name", KINDS)
def test_no_adversary_profits_on_the_hardened_protocol(pnl, name):
    assert pnl("adversaries")[name] <= 0


@pytest.mark.parametrize("name", KINDS)
def test_every_adversary_profits_with_the_defences_off(pnl, name):
    assert pnl("adversaries_unsafe")[name] > 0
