"""The demo job: deploy the system to a fresh local anvil, seed positions, print their health.

It stays until the simulation engine exists: then the main command runs the default scenario.
"""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3
from web3.logs import DISCARD

from simulation.build import compile_contracts
from simulation.chain import AnvilNode
from simulation.deploy import Deployment, deploy_system, send_and_wait
from simulation.units import USDC, WAD


@dataclass(frozen=True)
class Row:
    subject: str
    kind: str
    market: str
    size: float
    equity_usd: float
    initial_usd: float
    maintenance_usd: float
    liquidation_price: float
    liquidatable: bool


def push_rounds(w3: Web3, d: Deployment, prices: dict[str, float], step_s: int = 60) -> None:
    """New oracle rounds (as the oracle agent does), then the volatility cache refreshed."""
    w3.provider.make_request("evm_increaseTime", [step_s])  # type: ignore[arg-type]
    oracle = d.contract("OracleAdapter")
    for symbol, usd in prices.items():
        feed = d.contract(f"FEED_{symbol}")
        decimals = feed.functions.decimals().call()
        send_and_wait(w3, feed.functions.updateAnswer(round(usd * 10**decimals)), d.deployer)
        send_and_wait(w3, oracle.functions.cacheVolatility(d.addresses[symbol]), d.deployer)


CALM_ROUNDS = 9
"""Oracle rounds of a calm window: one more than the oracle's volatility window."""


def calm_window(w3: Web3, d: Deployment) -> None:
    """A minute apart, +-0.1 %: enough rounds for a (low) volatility reading."""
    for i in range(CALM_ROUNDS):
        wiggle = 0.001 * (-1) ** i
        push_rounds(w3, d, {"WETH": 3000 * (1 + wiggle), "WBTC": 60000 * (1 - wiggle)})


def seed_positions(w3: Web3, d: Deployment) -> None:
    """Three traders: isolated longs and shorts at several leverages, and one cross account."""
    alice, bob, carol = list(w3.eth.accounts)[1:4]
    vault, usdc, weth = d.contract("MarginVault"), d.contract("USDC"), d.contract("WETH")
    for who in (alice, bob, carol):
        send_and_wait(w3, usdc.functions.mint(who, 100_000 * USDC), d.deployer)
        send_and_wait(w3, usdc.functions.approve(vault.address, 2**256 - 1), who)
    send_and_wait(w3, weth.functions.mint(carol, 2 * WAD), d.deployer)
    send_and_wait(w3, weth.functions.approve(vault.address, 2**256 - 1), carol)
    eth, btc = d.markets["ETH-USD"], d.markets["BTC-USD"]
    send_and_wait(w3, vault.functions.openIsolated(eth, 3 * WAD, 1_000 * USDC), alice)  # ~9x long
    send_and_wait(
        w3, vault.functions.openIsolated(btc, -WAD // 10, 1_500 * USDC), alice
    )  # ~4x short
    send_and_wait(w3, vault.functions.openIsolated(eth, 6 * WAD, 1_100 * USDC), bob)  # ~16x long
    send_and_wait(w3, vault.functions.depositCollateral(usdc.address, 2_000 * USDC), carol)
    send_and_wait(w3, vault.functions.depositCollateral(weth.address, WAD), carol)
    send_and_wait(w3, vault.functions.tradeCross(eth, 4 * WAD), carol)
    send_and_wait(w3, vault.functions.tradeCross(btc, -WAD // 10), carol)


def _row(subject: str, kind: str, market: str, size: int, health: list[int], liq_price: int) -> Row:
    equity, initial, maintenance = health
    return Row(
        subject,
        kind,
        market,
        size / WAD,
        equity / WAD,
        initial / WAD,
        maintenance / WAD,
        liq_price / WAD,
        equity < maintenance,
    )


def health_table(w3: Web3, d: Deployment) -> list[Row]:
    vault, lens = d.contract("MarginVault"), d.contract("MarginLens")
    names = {v: k for k, v in d.markets.items()}
    rows = []
    ids, positions = vault.functions.openPositions(0, 1000).call()
    for pid, p in zip(ids, positions, strict=True):
        owner, market_id, _, size, *_ = p
        health = lens.functions.isolatedHealth(pid).call()
        liq = lens.functions.isolatedLiquidationPrice(pid).call()
        rows.append(_row(f"#{pid} {owner[:8]}", "isolated", names[market_id], size, health, liq))
    for account in vault.functions.crossAccounts(0, 1000).call():
        health = lens.functions.accountHealth(account).call()
        for market_id, name in names.items():
            size = vault.functions.crossPosition(account, market_id).call()[0]
            if size:
                liq = lens.functions.crossLiquidationPrice(account, market_id).call()
                rows.append(_row(account[:10], "cross", name, size, health, liq))
    return rows


COLUMNS = (
    ("position", "<18"),
    ("kind", "<10"),
    ("market", "<9"),
    ("size", ">9"),
    ("equity $", ">12"),
    ("initial $", ">11"),
    ("maint $", ">10"),
    ("liq price $", ">13"),
)


def format_table(rows: list[Row]) -> str:
    head = "".join(f"{name:{fmt}}" for name, fmt in COLUMNS) + "  liquidatable"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.subject:<18}{r.kind:<10}{r.market:<9}{r.size:>9.3f}{r.equity_usd:>12,.2f}"
            f"{r.initial_usd:>11,.2f}{r.maintenance_usd:>10,.2f}{r.liquidation_price:>13,.2f}"
            f"  {'YES' if r.liquidatable else 'no'}"
        )
    return "\n".join(lines)


def run_demo(eth_move: float = -0.06) -> int:
    artifacts = compile_contracts()
    with AnvilNode() as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        d = deploy_system(w3, artifacts, rpc_url=node.rpc_url)
        print(
            f"deployed {len(d.addresses)} contracts to anvil at {node.rpc_url}"
            f" (chain id {d.chain_id})"
        )
        calm_window(w3, d)
        seed_positions(w3, d)
        print("\nhealth at ETH $3,000, BTC $60,000:")
        print(format_table(health_table(w3, d)))
        eth = 3000 * (1 + eth_move)
        push_rounds(w3, d, {"WETH": eth, "WBTC": 60000})
        print(f"\nhealth after ETH moves {eth_move:+.0%} to ${eth:,.0f}:")
        print(format_table(health_table(w3, d)))
        print("\n" + keeper_pass(w3, d))
    return 0


def keeper_pass(w3: Web3, d: Deployment) -> str:
    """One keeper block: find everything liquidatable with one lens call each, liquidate it."""
    keeper = list(w3.eth.accounts)[4]
    vault, lens = d.contract("MarginVault"), d.contract("MarginLens")
    ids, _ = lens.functions.scanIsolated(0, 1000).call()
    accounts, _ = lens.functions.scanCross(0, 1000).call()
    lines = [f"keeper scan: {len(ids)} isolated, {len(accounts)} cross liquidatable"]
    for pid in ids:
        r = send_and_wait(w3, vault.functions.liquidateIsolated(pid), keeper)
        ev = vault.events.IsolatedLiquidated().process_receipt(r, errors=DISCARD)[0]["args"]
        bad = vault.events.BadDebtCovered().process_receipt(r, errors=DISCARD)
        lines.append(
            f"  #{pid}: closed {ev['closedSize'] / WAD:.3f} ({'full' if ev['full'] else 'partial'})"
            f" at ${ev['priceWad'] / WAD:,.2f}, keeper +${ev['keeperReward'] / USDC:,.2f},"
            f" insurance +${ev['insuranceFee'] / USDC:,.2f},"
            f" bad debt ${sum(b['args']['badDebt'] for b in bad) / USDC:,.2f}, gas {r['gasUsed']:,}"
        )
    for account in accounts:
        r = send_and_wait(w3, vault.functions.liquidateCross(account), keeper)
        lines.append(f"  {account[:10]}: cross liquidation, gas {r['gasUsed']:,}")
    return "\n".join(lines)
