"""What a run measures: one row per block (streamed to CSV), every protocol event (streamed to JSONL),
and the counters the summary is made of. Reporters live here, apart from agent behaviour."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from simulation import margin_math as mm
from simulation.adversary_pnl import gas_usd
from simulation.agents.base import Tx
from simulation.state import MarketView, Snapshot
from simulation.units import USDC, WAD


@dataclass
class KeeperStats:
    liquidations: int = 0
    rewards_usd: float = 0.0
    gas_used: int = 0
    lost_races: int = 0
    wasted_gas: int = 0
    reverted: int = 0
    missed_blocks: int = 0
    """An outside bot's blocks it did not act on in time (simulation.external); 0 for the others."""
    gas_usd: float = 0.0
    """What its transactions paid for gas, USD at the oracle's ETH price of the block."""
    wasted_gas_usd: float = 0.0
    """What its lost races paid for gas, USD."""
    missed: int = 0
    """Liquidatable episodes (a position or account liquidatable after a block, until it is not) it
    never sent a liquidation at (KeeperCards)."""
    latency_blocks_p50: float | None = None
    """Median blocks from a target's first liquidatable block to this keeper's liquidation of it."""
    latency_blocks_max: int | None = None
    latent_left_share: float | None = None
    """Of the latent bad debt (USD x blocks: underwater targets left open after a block), the part
    this keeper sent nothing at in the next block; None when there was none."""


@dataclass
class Counters:
    tx_sent: int = 0
    tx_reverted: int = 0
    tx_rejected: int = 0
    liquidations: int = 0
    liquidations_isolated: int = 0
    liquidations_cross: int = 0
    liquidated_notional_usd: float = 0.0
    profitable_positions_liquidated: int = 0
    collateral_lost_usd: float = 0.0
    bad_debt_usd: float = 0.0
    bad_debt_from_insurance_usd: float = 0.0
    bad_debt_from_pool_usd: float = 0.0
    collateral_seized: int = 0
    oracle_rounds: int = 0
    keepers: dict[str, KeeperStats] = field(default_factory=dict)
    invariant_blocks: int = 0
    invariant_violations: int = 0
    peak_capital_isolated_usd: float = 0.0
    peak_capital_netted_usd: float = 0.0
    peak_capital_portfolio_usd: float = 0.0
    carry: CarryTracker = field(default_factory=lambda: CarryTracker())
    latent_bad_debt_peak_usd: float = 0.0
    latent_bad_debt_blocks: int = 0
    quote_unseen_peak: int = 0
    """The most positions and accounts liquidatable at the quote's market price but not on the vault's
    books after any block (see `unseen_at_quote_price`)."""
    quote_overvalued_peak_usd: float = 0.0
    quote_price_low_wad: int | None = None
    """The lowest quote price the vault valued at (None: never read a quote feed)."""
    queue_peak_usd: float = 0.0
    """The most notional left liquidatable but open after any block (the liquidation queue), USD."""
    bad_debt_to_deleverage_usd: float = 0.0
    """Bad debt past the insurance fund and the pool's loss cap, left to auto-deleveraging."""
    deleveraged: int = 0
    """Positions auto-deleveraged (`Deleveraged` events)."""
    deleverage_haircut_usd: float = 0.0
    """What the deleveraged positions' profits paid back."""
    deficit_peak_usd: float = 0.0
    """The largest deleveraging deficit after any block."""
    funding_to_pool_usd: float = 0.0
    """Funding the traders paid, net (simulation.schemas.FundingDoc)."""
    funding_peak_rate: dict[str, float] = field(default_factory=dict)
    """Per market symbol: the funding rate of largest size seen, fraction of price a day."""
    funding_last: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Per market id: (funding index, net size) after the last block."""
    """Blocks that ended with latent bad debt (simulation.metrics.latent_bad_debt)."""
    reverts_by_kind: dict[str, int] = field(default_factory=dict)


def count_event(
    c: Counters,
    name: str,
    args: dict[str, Any],
    keeper: KeeperStats | None,
    stats: dict[str, float],
) -> None:
    """Fold one decoded event of a mined transaction into the run's counters `c`, the block's `stats`
    (its time-series row) and, for a keeper's transaction, that keeper's statistics. A pure function of
    its arguments: tested without a chain (tests/test_metrics.py). A liquidated position counts as
    profitable (contagion) when its PnL at the oracle price is >= 0: `markPnlUsd` (see `mark_pnl`), or
    without it the PnL realised at the fill price."""
    if name in ("IsolatedLiquidated", "CrossLiquidated"):
        c.liquidations += 1
        stats["liquidations"] += 1
        isolated = name == "IsolatedLiquidated"
        stats["isolated" if isolated else "cross"] += 1
        if isolated:
            c.liquidations_isolated += 1
            notional = abs(args["closedSize"]) * args["priceWad"] / WAD / WAD
            c.liquidated_notional_usd += notional
            stats["notional_usd"] += notional
            if args.get("markPnlUsd", args["realizedPnl"]) >= 0:
                c.profitable_positions_liquidated += 1
        else:
            c.liquidations_cross += 1
        paid = args["keeperReward"] + args["insuranceFee"] - min(0, args["realizedPnl"])
        c.collateral_lost_usd += paid / USDC
        if keeper is not None:
            keeper.liquidations += 1
            keeper.rewards_usd += args["keeperReward"] / USDC
    elif name == "CrossPositionLiquidated":
        notional = abs(args["closedSize"]) * args["priceWad"] / WAD / WAD
        c.liquidated_notional_usd += notional
        stats["notional_usd"] += notional
        if args.get("markPnlUsd", args["realizedPnlUsd"]) >= 0:
            c.profitable_positions_liquidated += 1
    elif name == "BadDebtCovered":
        c.bad_debt_usd += args["badDebt"] / USDC
        c.bad_debt_from_insurance_usd += args["fromInsurance"] / USDC
        c.bad_debt_from_pool_usd += args["fromPool"] / USDC
        c.bad_debt_to_deleverage_usd += args["toDeleverage"] / USDC
        c.collateral_lost_usd -= (
            args["badDebt"] / USDC
        )  # what the account could not pay, it did not lose
    elif name == "CollateralSeized":
        c.collateral_seized += 1
    elif name == "Deleveraged":
        c.deleveraged += 1
        c.deleverage_haircut_usd += args["haircut"] / USDC


@dataclass
class Races:
    """Who liquidated which target in which block: a keeper whose liquidation reverts within `window`
    blocks of another's liquidation of the same target lost the race."""

    window: int
    liquidated_at: dict[str, int] = field(default_factory=dict)


def fold_receipts(
    c: Counters,
    block: int,
    sent: Sequence[tuple[Tx, Any]],
    decode: Callable[[dict[str, Any]], tuple[str, dict[str, Any]] | None],
    races: Races,
    adv_gas_usd: dict[str, float],
    eth_price_wad: int,
) -> tuple[
    dict[str, float], list[tuple[str, str, dict[str, Any]]], list[tuple[Tx, dict[str, Any]]]
]:
    """Fold a mined block's transactions, each with its receipt (a dict, or anything else for one that
    has none), into the run's counters `c`, the keepers' statistics, the adversaries' gas (USD at
    `eth_price_wad`) and `races`. Returns the block's stats (for its time-series row), its decoded
    events as (agent, event name, fields) in block order, and the reverted transactions with their
    receipts (whose reasons are read from the chain and given to `count_revert`). Pure but for the
    accumulators it is handed: tested without a chain (tests/test_metrics.py)."""
    stats: dict[str, float] = {
        "block": block,
        "liquidations": 0,
        "isolated": 0,
        "cross": 0,
        "notional_usd": 0.0,
        "tx_sent": len(sent),
        "tx_reverted": 0,
    }
    events: list[tuple[str, str, dict[str, Any]]] = []
    reverted: list[tuple[Tx, dict[str, Any]]] = []
    lost: list[tuple[Tx, KeeperStats, int, float]] = []
    for tx, r in sent:
        c.tx_sent += 1
        ok = isinstance(r, dict) and r.get("status") == "0x1"
        gas = int(r["gasUsed"], 16) if isinstance(r, dict) else 0
        keeper = c.keepers.get(tx.agent)
        paid_usd = gas_usd(r, eth_price_wad) if isinstance(r, dict) else 0.0
        if keeper is not None:
            keeper.gas_used += gas
            keeper.gas_usd += paid_usd
        if tx.agent in adv_gas_usd and isinstance(r, dict):
            adv_gas_usd[tx.agent] += paid_usd
        if tx.kind == "oracle_round" and ok:
            c.oracle_rounds += 1
        if not ok:
            c.tx_reverted += 1
            stats["tx_reverted"] += 1
            if isinstance(r, dict):
                reverted.append((tx, r))
            if keeper is not None:
                keeper.reverted += 1
                lost.append((tx, keeper, gas, paid_usd))
            continue
        if tx.target:
            races.liquidated_at[tx.target] = block
        for log in r["logs"]:
            decoded = decode(log)
            if decoded is None:
                continue
            name, args = decoded
            where = {"txHash": r["transactionHash"], "logIndex": int(log["logIndex"], 16)}
            events.append((tx.agent, name, {**args, **where}))
            count_event(c, name, args, keeper, stats)
    for tx, keeper, gas, paid_usd in lost:
        won = races.liquidated_at.get(tx.target) if tx.target else None
        if won is not None and block - won <= races.window:
            keeper.lost_races += 1
            keeper.wasted_gas += gas
            keeper.wasted_gas_usd += paid_usd
    return stats, events, reverted


def mark_pnl(name: str, args: dict[str, Any], before: Snapshot) -> dict[str, Any]:
    """A liquidation event's fields plus `markPnlUsd`: the closed part's PnL at the oracle price the
    liquidation used, USD wad, from the position's entry before the block (the event gives the PnL at
    the fill price, which carries the close's spread and impact: a leg that was flat or slightly up on the
    market would count as a loss)."""
    entry: int | None = None
    if name == "IsolatedLiquidated":
        p = before.positions.get(args["positionId"])
        entry = p.entry_price_wad if p is not None else None
    elif name == "CrossPositionLiquidated":
        acct = before.cross_account(args["account"])
        leg = acct.positions.get(args["marketId"]) if acct is not None else None
        entry = leg[1] if leg is not None else None
    if entry is None:
        return args
    return {**args, "markPnlUsd": mm.pnl_usd_floor(args["closedSize"], entry, args["priceWad"])}


def count_revert(c: Counters, kind: str, reason: str) -> None:
    """One reverted transaction of `kind` (what its agent meant to do), by its decoded custom error."""
    key = f"{kind}:{reason}"
    c.reverts_by_kind[key] = c.reverts_by_kind.get(key, 0) + 1


INT64 = (-(2**63), 2**63 - 1)


def json_safe(x: Any) -> Any:
    """`x` with every integer outside int64 as its decimal string (wads, uint256 amounts): so
    `pandas.read_json(..., lines=True)` and other 64-bit readers load events.jsonl as it is."""
    if isinstance(x, bool):
        return x
    if isinstance(x, int):
        return x if INT64[0] <= x <= INT64[1] else str(x)
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    return x


def _json_default(x: Any) -> Any:
    if isinstance(x, bytes):
        return "0x" + x.hex()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


class Recorder:
    """Streams rows and events to disk as they happen, so a run that stops keeps everything so far."""

    def __init__(self, out_dir: Path):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self._events: IO[str] = open(out_dir / "events.jsonl", "w")  # noqa: SIM115
        self._csv_file: IO[str] = open(out_dir / "timeseries.csv", "w", newline="")  # noqa: SIM115
        self._csv: csv.DictWriter[str] | None = None

    def event(self, block: int, name: str, **fields: Any) -> None:
        doc = {"block": block, "event": name, **json_safe(fields)}
        self._events.write(json.dumps(doc, default=_json_default) + "\n")

    def row(self, row: dict[str, float]) -> None:
        if self._csv is None:
            self._csv = csv.DictWriter(self._csv_file, fieldnames=list(row))
            self._csv.writeheader()
        self._csv.writerow(row)

    def flush(self) -> None:
        self._events.flush()
        self._csv_file.flush()

    def close(self) -> None:
        """Close both files, then write timeseries.parquet beside the CSV (the same table, typed)."""
        self._events.close()
        self._csv_file.close()
        series = self.out_dir / "timeseries.csv"
        if series.stat().st_size:
            import pandas as pd

            tmp = self.out_dir / "timeseries.parquet.tmp"
            pd.read_csv(series).to_parquet(tmp, index=False)
            tmp.replace(self.out_dir / "timeseries.parquet")


@dataclass(frozen=True)
class Leg:
    """One position of the book after a block, as both margining methods see it (USD wads)."""

    owner: str
    key: tuple[Any, ...]
    """("iso", position id) or ("cross", owner, market id)."""
    initial_usd: int
    maintenance_usd: int
    pnl_usd: int
    long: bool = True
    """Its side (portfolio margin offsets opposite sides)."""


def _health(view: MarketView, margin_usd: int, size: int, entry: int) -> mm.Health | None:
    """A position's health at the market's oracle price and ratios; None while the market is stale."""
    return view.health(margin_usd, size, entry)


def book_legs(snap: Snapshot) -> list[Leg]:
    """Every open isolated position and every cross leg whose market has a price."""
    legs = []
    for p in snap.positions.values():
        h = _health(snap.market(p.market_id), p.funding_usd, p.size_wad, p.entry_price_wad)
        if h is not None:
            key = ("iso", p.position_id)
            legs.append(
                Leg(p.owner, key, h.initial_usd, h.maintenance_usd, h.equity_usd, p.size_wad > 0)
            )
    for owner, acct in snap.cross.items():
        for mid, (size, entry) in acct.positions.items():
            h = _health(snap.market(mid), acct.funding_usd.get(mid, 0), size, entry)
            if h is not None:
                cross_key = ("cross", owner, mid)
                legs.append(
                    Leg(owner, cross_key, h.initial_usd, h.maintenance_usd, h.equity_usd, size > 0)
                )
    return legs


def health_and_capital(
    snap: Snapshot, legs: list[Leg] | None = None
) -> tuple[list[float], float, float, float]:
    """Equity / maintenance of every open position and cross account, and the collateral the whole
    book needs at the initial requirement, margined three ways: each position on its own
    (sum of max(0, initial - PnL)), netted per owner (sum over owners of max(0, sum initial - sum PnL)),
    and on each owner's net risk (portfolio: the legs' initials signed by side, aggregated as the vault's
    `portfolioRequirementUsdUp` does, less the PnL)."""
    legs = book_legs(snap) if legs is None else legs
    ratios: list[float] = []
    for leg in legs:  # an isolated position's equity is its margin plus its PnL
        if leg.key[0] == "iso" and leg.maintenance_usd:
            p = snap.positions[leg.key[1]]
            equity = (
                mm.quote_to_usd_down(p.margin_quote, 6, p.quote_price_wad) + leg.pnl_usd
            )  # has funding
            ratios.append(equity / leg.maintenance_usd)
    for acct in snap.cross.values():
        if acct.positions and acct.maintenance_usd:
            ratios.append(acct.equity_usd / acct.maintenance_usd)
    per_owner: dict[str, list[tuple[int, int]]] = {}
    for leg in legs:
        per_owner.setdefault(leg.owner, []).append((leg.initial_usd, leg.pnl_usd))
    isolated = sum(max(0, init - pnl) for legs_ in per_owner.values() for init, pnl in legs_)
    netted = sum(
        max(0, sum(i for i, _ in legs_) - sum(p for _, p in legs_)) for legs_ in per_owner.values()
    )
    signed: dict[str, list[int]] = {}
    for leg in legs:
        signed.setdefault(leg.owner, []).append(leg.initial_usd if leg.long else -leg.initial_usd)
    portfolio = sum(
        max(0, mm.portfolio_requirement_usd_up(signed[o], mm.PORTFOLIO_CORRELATION_WAD) - pnl)
        for o, pnl in ((o, sum(p for _, p in legs_)) for o, legs_ in per_owner.items())
    )
    return ratios, isolated / WAD, netted / WAD, portfolio / WAD


@dataclass
class CarryTracker:
    """The least collateral that carries the book through the path without a liquidation, margined
    two ways, on the same book. A leg needs, at each block, its requirement less its PnL: the initial
    requirement in the block it is first seen (opening needs it), the maintenance one after.
    - Isolated: a position's margin is locked while it is open, so it must cover the position's worst
      moment over its whole life, W = max(0, max over its blocks of the need); an owner needs, at
      each block, the sum of the W of its positions open then (the margin of a closed one is free for
      the next), and the most of that over the path.
    - Cross: an owner needs, at each block, the sum of its open legs' needs at that block, and the
      most of that over the path.
    - Portfolio: the same, with the owner's requirement on its net risk (its legs' requirements signed by
      side, `portfolio_requirement_usd_up`) less the sum of their PnL.
    Summed over owners. Each owner's cross figure is at most its isolated one (a sum of maxima bounds
    the maximum of the sums); they differ by what offsetting legs save when their worst moments fall
    apart. A cross leg is one market of one account: closed and reopened, it counts as one leg."""

    seen: dict[tuple[Any, ...], tuple[str, int, int]] = field(default_factory=dict)
    """Leg -> (owner, first block, last block)."""
    worst_leg: dict[tuple[Any, ...], int] = field(default_factory=dict)
    worst_owner: dict[str, int] = field(default_factory=dict)
    worst_portfolio: dict[str, int] = field(default_factory=dict)

    def update(self, block: int, legs: list[Leg]) -> None:
        per_owner: dict[str, int] = {}
        signed: dict[str, list[int]] = {}
        pnl: dict[str, int] = {}
        for leg in legs:
            known = self.seen.get(leg.key)
            req = leg.maintenance_usd if known is not None else leg.initial_usd
            self.seen[leg.key] = (leg.owner, known[1] if known else block, block)
            need = req - leg.pnl_usd
            if need > self.worst_leg.get(leg.key, 0):
                self.worst_leg[leg.key] = need
            per_owner[leg.owner] = per_owner.get(leg.owner, 0) + need
            signed.setdefault(leg.owner, []).append(req if leg.long else -req)
            pnl[leg.owner] = pnl.get(leg.owner, 0) + leg.pnl_usd
        for owner, need in per_owner.items():
            if need > self.worst_owner.get(owner, 0):
                self.worst_owner[owner] = need
            net = mm.portfolio_requirement_usd_up(signed[owner], mm.PORTFOLIO_CORRELATION_WAD)
            if net - pnl[owner] > self.worst_portfolio.get(owner, 0):
                self.worst_portfolio[owner] = net - pnl[owner]

    @property
    def isolated_usd(self) -> float:
        changes: dict[str, list[tuple[int, int]]] = {}
        for key, (owner, first, last) in self.seen.items():
            w = self.worst_leg.get(key, 0)
            changes.setdefault(owner, []).extend(((first, w), (last + 1, -w)))
        total = 0
        for steps in changes.values():
            held = peak = 0
            for _, delta in sorted(steps, key=lambda s: (s[0], s[1])):  # frees before locks
                held += delta
                peak = max(peak, held)
            total += peak
        return total / WAD

    @property
    def cross_usd(self) -> float:
        return sum(self.worst_owner.values()) / WAD

    @property
    def portfolio_usd(self) -> float:
        return sum(self.worst_portfolio.values()) / WAD


def latent_bad_debt(snap: Snapshot) -> tuple[int, float]:
    """Positions and cross accounts that are liquidatable after the block yet still open (no keeper
    took them: too slow, out, or the reward below the gas), and the sum of their negative equity, USD:
    bad debt that has happened but is not booked."""
    return latent_of(underwater_targets(snap))


def latent_of(underwater: Mapping[str, int]) -> tuple[int, float]:
    """`latent_bad_debt` from the block's `underwater_targets`: how many, and their sum, USD."""
    return len(underwater), sum(underwater.values()) / WAD


def underwater_targets(snap: Snapshot) -> dict[str, int]:
    """Every liquidatable position (`iso:<id>`) and cross account (`cross:<address>`, lowercase) after
    the block, with its negative equity, USD wad (0 when its equity is still positive). Equity at the
    oracle price, as the vault sees it."""
    out: dict[str, int] = {}
    for pid in snap.liquidatable_isolated:
        p = snap.positions.get(pid)
        view = snap.market(p.market_id) if p is not None else None
        if p is None or view is None or view.price_wad is None:
            continue
        pnl = mm.pnl_usd_floor(p.size_wad, p.entry_price_wad, view.price_wad)
        out[f"iso:{pid}"] = max(0, -(p.margin_and_funding_usd + pnl))
    for owner in snap.liquidatable_cross:
        acct = snap.cross.get(owner)
        if acct is not None:
            out[f"cross:{owner.lower()}"] = max(0, -acct.equity_usd)
    return out


LIQUIDATION_TARGET = {
    "IsolatedLiquidated": ("iso", "positionId"),
    "CrossLiquidated": ("cross", "account"),
}
"""A liquidation event -> the target it names (prefix, field), as a keeper's Tx.target writes it."""


@dataclass
class KeeperCards:
    """Each keeper's report card, beyond its counters: the liquidatable episodes it missed, its latency
    and the latent bad debt it left. An episode is a target (position or cross account) liquidatable
    after some block until, after a later one, it is not (liquidated, or healthy again); one still open
    at the end of the run ends there. A keeper *tried* an episode when a transaction of its aimed at
    the target while it lasted; it *missed* one it never tried. Its latency on a liquidation is the
    block it landed in minus the block after which the target was first seen liquidatable (1: at the
    first chance; 0: in the block it became liquidatable, an oracle round ahead of it). A transaction
    aimed at the target within `window` blocks after its episode ended counts as tried (a race lost,
    not a miss). Every keeper is judged on every episode, whoever took it."""

    keepers: list[str]
    window: int = 1
    since: dict[str, int] = field(default_factory=dict)
    tried: dict[str, set[str]] = field(default_factory=dict)
    ended: dict[str, tuple[int, set[str]]] = field(default_factory=dict)
    """Targets whose episode ended lately -> (the block after which it ended, who missed it)."""
    latent: dict[str, float] = field(default_factory=dict)
    """The last block's underwater targets -> USD below zero."""
    latencies: dict[str, list[int]] = field(default_factory=dict)
    missed: dict[str, int] = field(default_factory=dict)
    left_usd_blocks: dict[str, float] = field(default_factory=dict)
    latent_usd_blocks: float = 0.0

    def fold(
        self,
        block: int,
        sent: Sequence[tuple[Tx, Any]],
        events: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
    ) -> None:
        """A mined block: its transactions (each with its receipt) and its decoded events as (agent,
        name, fields). A keeper aims at a target with a transaction naming it (reverted or not) or
        with a liquidation event of its transaction (whatever it called: its own contract too); the
        latency is read from the events."""
        aimed: dict[str, set[str]] = {}

        def aim(keeper: str, target: str) -> None:
            aimed.setdefault(target, set()).add(keeper)
            if target in self.tried:
                self.tried[target].add(keeper)
            elif target in self.ended:  # late for an episode that just ended: a race, not a miss
                end, missed = self.ended[target]
                if block - end <= self.window and keeper in missed:
                    missed.discard(keeper)
                    self.missed[keeper] -= 1

        for tx, _ in sent:
            if tx.agent in self.keepers and tx.target:
                aim(tx.agent, tx.target.lower())
        for agent, name, args in events:
            if agent not in self.keepers or name not in LIQUIDATION_TARGET:
                continue
            prefix, key = LIQUIDATION_TARGET[name]
            target = f"{prefix}:{str(args[key]).lower()}"
            aim(agent, target)
            self.latencies.setdefault(agent, []).append(block - self.since.get(target, block))
        total = sum(self.latent.values())
        self.latent_usd_blocks += total
        for k in self.keepers:
            left = sum(usd for t, usd in self.latent.items() if k not in aimed.get(t, ()))
            self.left_usd_blocks[k] = self.left_usd_blocks.get(k, 0.0) + left

    def after(self, block: int, now: Mapping[str, int]) -> None:
        """The state after `block` (its `underwater_targets`): episodes that end and begin."""
        self.ended = {t: e for t, e in self.ended.items() if block - e[0] < self.window}
        for target in [t for t in self.since if t not in now]:
            self._close(target, block)
        for target in now:
            if target not in self.since:
                self.since[target], self.tried[target] = block, set()
        self.latent = {t: usd / WAD for t, usd in now.items() if usd > 0}

    def _close(self, target: str, block: int) -> None:
        tried = self.tried.pop(target)
        del self.since[target]
        missed = {k for k in self.keepers if k not in tried}
        for k in missed:
            self.missed[k] = self.missed.get(k, 0) + 1
        self.ended[target] = (block, missed)

    def finish(self, stats: dict[str, KeeperStats], last_block: int) -> None:
        """End the open episodes and write the cards into the keepers' statistics. An episode that
        began within the race window of the run's `last_block` is dropped, not charged as a miss: no
        keeper had the time to reach it."""
        for target in list(self.since):
            if self.since[target] > last_block - self.window:
                del self.since[target], self.tried[target]
                continue
            self._close(target, -self.window - 1)  # at the end: nothing later can try it
        for k in self.keepers:
            lat = sorted(self.latencies.get(k, []))
            s = stats[k]
            s.missed = self.missed.get(k, 0)
            s.latency_blocks_p50 = float(np.median(lat)) if lat else None
            s.latency_blocks_max = lat[-1] if lat else None
            s.latent_left_share = (
                round(self.left_usd_blocks.get(k, 0.0) / self.latent_usd_blocks, 6)
                if self.latent_usd_blocks > 0
                else None
            )


def unseen_at_quote_price(snap: Snapshot, quote_usd: float) -> tuple[int, float]:
    """What valuing the quote at its market price `quote_usd` (not at the vault's `quote_price_wad`) would
    show: the isolated positions and cross accounts liquidatable then that the vault does not list, and
    how much the vault's valuation overstates the quote they hold (margins and cross quote balances), USD.
    Both 0 when the vault values the quote at its feed (but for the oracle's lag)."""
    market_wad = round(quote_usd * WAD)
    gap = snap.quote_price_wad - market_wad
    count, quote_held = 0, 0
    listed_iso, listed_cross = set(snap.liquidatable_isolated), set(snap.liquidatable_cross)
    for p in snap.positions.values():
        quote_held += p.margin_quote
        if p.position_id in listed_iso:
            continue
        equity = mm.quote_to_usd_down(p.margin_quote, 6, market_wad) + p.funding_usd
        h = snap.market(p.market_id).health(equity, p.size_wad, p.entry_price_wad)
        count += h is not None and h.liquidatable
    for owner, acct in snap.cross.items():
        quote_held += acct.balance_quote
        if not acct.positions or owner in listed_cross:
            continue
        equity = acct.equity_usd - acct.balance_quote * gap // 10**6
        count += equity < acct.maintenance_usd
    return count, quote_held * gap / 10**6 / WAD


def queued_notional_usd(snap: Snapshot) -> float:
    """Notional of the positions and cross accounts liquidatable after the block yet still open, USD at
    the oracle price: the liquidation queue (what keepers left, or a liquidation cap held back)."""
    total = 0
    for pid in snap.liquidatable_isolated:
        p = snap.positions.get(pid)
        price = snap.market(p.market_id).price_wad if p is not None else None
        if p is not None and price is not None:
            total += mm.notional_usd_up(p.size_wad, price)
    for owner in snap.liquidatable_cross:
        acct = snap.cross.get(owner)
        for mid, (size, _) in acct.positions.items() if acct is not None else ():
            total += mm.notional_usd_up(size, snap.market(mid).price_wad or 0)
    return total / WAD


def block_row(
    snap: Snapshot,
    prices: dict[str, float],
    counters: Counters,
    block_stats: dict[str, float],
    underwater: Mapping[str, int],
) -> dict[str, float]:
    """One time-series row; `underwater`: the snapshot's `underwater_targets` (the engine's, read once
    a block for the keepers' cards too)."""
    legs = book_legs(snap)
    ratios, capital_isolated, capital_netted, capital_portfolio = health_and_capital(snap, legs)
    counters.carry.update(int(block_stats["block"]), legs)
    latent_count, latent_usd = latent_of(underwater)
    counters.latent_bad_debt_peak_usd = max(counters.latent_bad_debt_peak_usd, latent_usd)
    counters.latent_bad_debt_blocks += latent_usd > 0
    queue_usd = queued_notional_usd(snap)
    counters.queue_peak_usd = max(counters.queue_peak_usd, queue_usd)
    funding_paid = track_funding(snap, counters)
    deficit = sum(m.deficit_long_quote + m.deficit_short_quote for m in snap.markets) / USDC
    counters.deficit_peak_usd = max(counters.deficit_peak_usd, deficit)
    counters.peak_capital_isolated_usd = max(counters.peak_capital_isolated_usd, capital_isolated)
    counters.peak_capital_netted_usd = max(counters.peak_capital_netted_usd, capital_netted)
    counters.peak_capital_portfolio_usd = max(
        counters.peak_capital_portfolio_usd, capital_portfolio
    )
    q = np.percentile(ratios, [10, 50, 90]) if ratios else [math.nan] * 3
    oi_long = sum(m.oi_long_wad * (m.price_wad or 0) for m in snap.markets) / WAD / WAD
    oi_short = sum(m.oi_short_wad * (m.price_wad or 0) for m in snap.markets) / WAD / WAD
    row: dict[str, float] = {
        "block": block_stats["block"],
        "timestamp": snap.timestamp_s,
        "base_fee_gwei": snap.base_fee_wei / 1e9,
    }
    for symbol, price in prices.items():
        row[f"price_{symbol}"] = price
    if "USDC" in prices:  # the quote has a market price: what the vault's valuation of it hides
        unseen, overstated = unseen_at_quote_price(snap, prices["USDC"])
        row["quote_unseen_liquidatable"] = unseen
        row["quote_overvalued_usd"] = overstated
        counters.quote_unseen_peak = max(counters.quote_unseen_peak, unseen)
        counters.quote_overvalued_peak_usd = max(counters.quote_overvalued_peak_usd, overstated)
        low = counters.quote_price_low_wad
        counters.quote_price_low_wad = min(low or snap.quote_price_wad, snap.quote_price_wad)
    for symbol, (answer, _) in snap.oracle_rounds.items():
        row[f"oracle_{symbol}"] = answer / 1e8
    for (
        m
    ) in snap.markets:  # effective maintenance ratio: base + volatility buffer (NaN while stale)
        mmr = m.maintenance_ratio_wad
        row[f"maintenance_ratio_{m.symbol}"] = mmr / WAD if mmr is not None else math.nan
        row[f"funding_rate_pct_day_{m.symbol}"] = 100 * m.funding_rate_day_wad / WAD
    row.update(
        {
            "oi_long_usd": oi_long,
            "oi_short_usd": oi_short,
            "open_positions": len(snap.positions),
            "cross_accounts": sum(1 for a in snap.cross.values() if a.positions),
            "liquidations": block_stats["liquidations"],
            "liquidations_isolated": block_stats["isolated"],
            "liquidations_cross": block_stats["cross"],
            "liquidated_notional_usd": block_stats["notional_usd"],
            "bad_debt_usd": counters.bad_debt_usd,
            "latent_liquidatable": latent_count,
            "latent_bad_debt_usd": latent_usd,
            "liquidation_queue_usd": queue_usd,
            "funding_paid_usd": funding_paid,
            "funding_to_pool_usd": counters.funding_to_pool_usd,
            "funding_open_usd": open_funding_usd(snap),
            "deleverage_deficit_usd": deficit,
            "deleveraged": counters.deleveraged,
            "insurance_fund_usd": snap.insurance_quote / USDC,
            "lp_share_price": share_price(snap),
            "pool_cash_usd": snap.pool_cash_quote / USDC,
            "keeper_rewards_usd": sum(k.rewards_usd for k in counters.keepers.values()),
            "keeper_gas": sum(k.gas_used for k in counters.keepers.values()),
            "health_p10": float(q[0]),
            "health_p50": float(q[1]),
            "health_p90": float(q[2]),
            "health_min": min(ratios) if ratios else math.nan,
            "capital_isolated_usd": capital_isolated,
            "capital_netted_usd": capital_netted,
            "capital_portfolio_usd": capital_portfolio,
            "tx_sent": block_stats["tx_sent"],
            "tx_reverted": block_stats["tx_reverted"],
        }
    )
    for name, k in counters.keepers.items():
        row[f"keeper_{name}_rewards_usd"] = k.rewards_usd
        row[f"keeper_{name}_gas"] = k.gas_used
    return row


def track_funding(snap: Snapshot, counters: Counters) -> float:
    """What the traders paid in funding over the block, net, USD (the pool's side): per market, the net size
    before the block times how far the funding index moved; the peak rates on the way."""
    paid = 0
    for m in snap.markets:
        index, net = counters.funding_last.get(m.market_id, (m.funding_index_wad, m.net_size_wad))
        paid += net * (m.funding_index_wad - index) // WAD
        counters.funding_last[m.market_id] = (m.funding_index_wad, m.net_size_wad)
        rate, peak = m.funding_rate_day_wad / WAD, counters.funding_peak_rate.get(m.symbol)
        if peak is None or abs(rate) > abs(peak):
            counters.funding_peak_rate[m.symbol] = rate
    counters.funding_to_pool_usd += paid / WAD
    return paid / WAD


def open_funding_usd(snap: Snapshot) -> float:
    """Funding accrued by the open positions and not yet settled, USD (+ owed to them)."""
    isolated = sum(p.funding_usd for p in snap.positions.values())
    cross = sum(sum(a.funding_usd.values()) for a in snap.cross.values())
    return (isolated + cross) / WAD


def share_price(snap: Snapshot) -> float:
    """USD per LP share (the pool has 6-decimal assets and 12-decimal shares: virtual offset 6)."""
    if snap.pool_supply_shares == 0:
        return 1.0
    return (snap.pool_assets_quote / USDC) / (snap.pool_supply_shares / 10**12)
