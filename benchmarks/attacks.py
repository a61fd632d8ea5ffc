"""The outside review's attacks, measured on a real anvil against the hardened deployment and against the
same deployment with every defence off (what the review attacked), as JSON.

    python benchmarks/attacks.py [--out benchmarks/results/attacks.json]

Each attack runs from a snapshot of a freshly deployed system, so they do not interfere.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulation.build import compile_contracts
from simulation.chain import AnvilNode
from simulation.deploy import DEFENCES_OFF, Deployment, SystemSpec, deploy_system, send_and_wait
from simulation.units import MAX_UINT, USDC, WAD

HARDENED = SystemSpec()


class Chain:
    """One deployment on an automining anvil, with snapshots and plain sends."""

    def __init__(self, w3: Web3, d: Deployment):
        self.w3, self.d = w3, d
        accounts: list[str] = list(w3.eth.accounts)
        self.owner, self.alice, self.bob, self.keeper = accounts[:4]
        self.vault, self.pool, self.usdc = (
            d.contract(n) for n in ("MarginVault", "LPPool", "USDC")
        )
        self.wbtc, self.eth_feed = d.contract("WBTC"), d.contract("FEED_WETH")

    def rpc(self, method: str, params: list[Any]) -> Any:
        return self.w3.provider.make_request(method, params)["result"]  # type: ignore[arg-type]

    def wait(self, seconds: int) -> None:
        """Mine an empty block `seconds` later (gas estimates read the latest block)."""
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine", [])

    def send(self, fn: Any, sender: str) -> Any:
        return send_and_wait(self.w3, fn, sender)

    def fund(self, token: Any, who: str, raw: int, spender: Any) -> None:
        self.send(token.functions.mint(who, raw), self.owner)
        self.send(token.functions.approve(spender.address, MAX_UINT), who)

    def price(self, usd: float) -> None:
        self.send(self.eth_feed.functions.updateAnswer(round(usd * 10**8)), self.owner)

    def event(self, receipt: Any, name: str) -> Any:
        return getattr(self.vault.events, name)().process_receipt(receipt, errors=DISCARD)[0][
            "args"
        ]

    def open(self, who: str, size: int, margin: int) -> tuple[int, int]:
        r = self.send(self.vault.functions.openIsolated(0, size, margin), who)
        ev = self.event(r, "IsolatedOpened")
        return ev["positionId"], ev["fillPriceWad"]

    def balance(self, who: str) -> int:
        return self.usdc.functions.balanceOf(who).call()


def isolated(c: Chain, attack: Any) -> Any:
    snap = c.rpc("evm_snapshot", [])
    try:
        return attack(c)
    finally:
        c.rpc("evm_revert", [snap])


def jit(c: Chain) -> dict[str, Any]:
    """Review: a $1M open paid 1.05 % normally and 0.10 % after a $190M deposit in the same block."""
    size = 1_000_000 * WAD // 3000
    c.fund(c.usdc, c.alice, 200_000 * USDC, c.vault)
    snap = c.rpc("evm_snapshot", [])
    _, normal = c.open(c.alice, size, 100_000 * USDC)
    c.rpc("evm_revert", [snap])
    c.fund(c.usdc, c.bob, 190_000_000 * USDC, c.pool)
    shares = c.pool.functions.balanceOf(c.bob).call()
    c.send(c.pool.functions.deposit(190_000_000 * USDC, c.bob), c.bob)
    shares = c.pool.functions.balanceOf(c.bob).call() - shares
    _, after = c.open(c.alice, size, 100_000 * USDC)
    can_leave = c.pool.functions.maxRedeem(c.bob).call() >= shares
    return {
        "fee_pct_normal": round((normal / (3000 * WAD) - 1) * 100, 4),
        "fee_pct_after_deposit": round((after / (3000 * WAD) - 1) * 100, 4),
        "depositor_can_redeem_at_once": can_leave,
    }


def front_run(c: Chain) -> dict[str, Any]:
    """Review: +$149.62 per round at $50k by trading ahead of a 0.5 % deviation round."""
    c.fund(c.usdc, c.alice, 10_000 * USDC, c.vault)
    pid, _ = c.open(c.alice, 50_000 * WAD // 3000, 10_000 * USDC)
    c.price(3000 * 1.005)
    before = c.balance(c.alice)
    c.send(c.vault.functions.closeIsolated(pid), c.alice)
    return {"profit_usd_per_round_at_50k": (c.balance(c.alice) - before - 10_000 * USDC) / USDC}


def self_liquidation(c: Chain) -> dict[str, Any]:
    """Review: liquidating one's own $2M position from a second address recovered $48,392, against
    $19,415 by closing it."""
    c.fund(c.usdc, c.alice, 150_000 * USDC, c.vault)
    pid, _ = c.open(c.alice, 2_000_000 * WAD // 3000, 150_000 * USDC)
    c.price(2920)
    snap = c.rpc("evm_snapshot", [])
    ev = c.event(c.send(c.vault.functions.liquidateIsolated(pid), c.bob), "IsolatedLiquidated")
    c.rpc("evm_revert", [snap])
    before = c.balance(c.alice)
    if ev["full"]:
        c.send(c.vault.functions.closeIsolated(pid), c.alice)
        closing = c.balance(c.alice) - before
    else:
        c.send(c.vault.functions.modifyIsolated(pid, -ev["closedSize"]), c.alice)
        closing = c.vault.functions.position(pid).call()[4]
    return {
        "owner_side_by_self_liquidation_usd": (ev["remaining"] + ev["keeperReward"]) / USDC,
        "owner_side_by_closing_the_same_part_usd": closing / USDC,
        "full": ev["full"],
    }


def stale_collateral(c: Chain) -> dict[str, Any]:
    """Review: 1e-8 WBTC with a stale BTC feed made liquidateCross revert with StalePrice."""
    c.fund(c.wbtc, c.alice, 1, c.vault)
    c.send(c.vault.functions.depositCollateral(c.wbtc.address, 1), c.alice)
    c.fund(c.usdc, c.alice, 1_000 * USDC, c.vault)
    c.send(c.vault.functions.depositCollateral(c.usdc.address, 1_000 * USDC), c.alice)
    c.send(c.vault.functions.tradeCross(0, 5 * WAD), c.alice)
    c.rpc("evm_increaseTime", [3601])
    c.price(2700)
    lens = c.d.contract("MarginLens")
    try:
        listed = c.alice in lens.functions.scanCross(0, 100).call()[0]
    except ContractCustomError:
        listed = False
    try:
        c.vault.functions.liquidateCross(c.alice).call({"from": c.keeper})
        liquidatable = True
    except ContractCustomError:
        liquidatable = False
    return {"scan_lists_the_account": listed, "liquidate_cross_succeeds": liquidatable}


def exit_ahead_of_bad_debt(c: Chain) -> dict[str, Any]:
    """Review (lower severity): between the round that sinks a position and its liquidation the pool
    counts the loss beyond its margin as collectable. An LP with $1M asks to leave right after the round
    (a $2M long on $150k, ETH -15 %); a keeper liquidates; the LP claims as soon as the pool lets it."""
    c.fund(c.usdc, c.bob, 1_000_000 * USDC, c.pool)
    c.send(c.pool.functions.deposit(1_000_000 * USDC, c.bob), c.bob)
    shares = c.pool.functions.balanceOf(c.bob).call()
    c.wait(c.pool.functions.depositCooldown().call())
    c.fund(c.usdc, c.alice, 150_000 * USDC, c.vault)
    pid, _ = c.open(c.alice, 2_000_000 * WAD // 3000, 150_000 * USDC)
    c.price(2550)
    on_paper = c.pool.functions.convertToAssets(shares).call()
    before = c.balance(c.bob)
    c.send(c.pool.functions.requestRedeem(shares), c.bob)
    delay = c.pool.functions.exitDelay().call()
    if delay == 0:  # claimable at once: ahead of the keeper
        c.send(c.pool.functions.claimRedeem(c.bob), c.bob)
    c.send(c.vault.functions.liquidateIsolated(pid), c.keeper)
    if delay:
        c.wait(delay)
        c.send(c.pool.functions.claimRedeem(c.bob), c.bob)
    return {
        "shares_value_on_paper_usd": on_paper / USDC,
        "paid_usd": (c.balance(c.bob) - before) / USDC,
        "shares_value_after_liquidation_usd": c.pool.functions.previewRedeem(shares).call() / USDC,
    }


def owner_powers(c: Chain) -> dict[str, Any]:
    """Review: the owner set maintenance 50 %, penalty 20 %, keeper share 100 % in one transaction."""
    params = list(c.vault.functions.market(0).call()[5])
    params[0], params[1], params[3], params[4] = 51 * WAD // 100, WAD // 2, WAD // 5, WAD
    try:
        c.vault.functions.setMarketParams(0, params).call({"from": c.owner})
        accepted = True
    except ContractCustomError:
        accepted = False
    return {"owner_can_queue_the_review_change": accepted, "timelock_s": 86_400}


ATTACKS = {
    "jit_liquidity": jit,
    "oracle_front_running": front_run,
    "self_liquidation": self_liquidation,
    "stale_collateral": stale_collateral,
    "owner_key": owner_powers,
    "lp_exit_ahead_of_bad_debt": exit_ahead_of_bad_debt,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/attacks.json"))
    args = ap.parse_args()
    artifacts = compile_contracts()
    result: dict[str, dict[str, Any]] = {}
    for label, spec in (("hardened", HARDENED), ("defences_off", DEFENCES_OFF)):
        with AnvilNode() as node:
            w3 = Web3(Web3.HTTPProvider(node.rpc_url))
            c = Chain(w3, deploy_system(w3, artifacts, rpc_url=node.rpc_url, spec=spec))
            result[label] = {name: isolated(c, fn) for name, fn in ATTACKS.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
