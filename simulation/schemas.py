"""JSON Schemas of what users write and read, published from the pydantic models that validate them:
the scenario file (simulation.scenario.Scenario), the sweep file (simulation.sweep.SweepFile) and
summary.json (SummaryDoc below, which every run's summary is checked against in the tests).

    python -m simulation.schemas            # rewrite schemas/*.schema.json
    python -m simulation.schemas --check    # exit 1 if a published schema is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Liquidations(_Doc):
    count: int
    isolated: int
    cross: int
    notional_usd: float


class BadDebtCovered(_Doc):
    insurance_usd: float
    lp_pool_usd: float
    deleveraging_usd: float = 0.0
    """Past the insurance fund and the pool's loss cap: left to auto-deleveraging."""


class DeleveragingDoc(_Doc):
    """Auto-deleveraging (`protocol.markets.*.pool_loss_cap`); zeros without a cap."""

    positions: int
    """Profitable positions reduced (`Deleveraged` events)."""
    haircut_usd: float
    """What their profits paid of the deficit."""
    deficit_peak_usd: float
    """The largest deficit after any block: bad debt waiting for deleveraging."""
    deficit_end_usd: float


class StartEnd(_Doc):
    start: float
    end: float


class Margining(_Doc):
    isolated_margining: float
    cross_margining: float
    portfolio_margining: float | None = None
    """On each owner's net risk (portfolio margin)."""


class Latent(_Doc):
    peak: float
    """The most latent bad debt after any block, USD."""
    end: float
    blocks: int
    """Blocks that ended with latent bad debt."""


class FundingDoc(_Doc):
    """Funding (MarketParams.fundingRateWad); zeros in markets without it."""

    to_pool_usd: float
    """What the traders paid, net, over the run: per block, each market's net size before the block times
    how far its funding index moved (the pool holds the net, so it is what the pool earned)."""
    open_usd: float
    """Funding accrued by the positions still open at the end, not yet settled (+ owed to them)."""
    peak_rate_pct_day: dict[str, float]
    """Per market: the largest funding rate the skew drove, % of price a day (sign: + longs paid)."""


class CascadeDoc(_Doc):
    """Liquidations that moved the market (simulation.depth); zeros without `market.depth`."""

    depth: bool
    """Whether the scenario has market depth (liquidations move the price)."""
    induced_liquidations: int
    """Liquidations whose target was healthy at the price without earlier liquidations' impact."""
    rounds: int
    """Blocks with at least one induced liquidation."""
    share_of_move: dict[str, float]
    """Per asset: the part of the largest peak-to-trough log fall that liquidation impact accounts for."""
    peak_impact_pct: dict[str, float]
    """Per asset: the largest fall liquidation impact caused, % of price (negative: pushed down)."""


class KeeperDoc(_Doc):
    liquidations: int
    rewards_usd: float
    gas_used: int
    lost_races: int
    wasted_gas: int
    reverted: int
    missed_blocks: int
    """An outside bot's blocks it did not act on within the lockstep's timeout (0 for the others)."""
    gas_usd: float
    """What its transactions paid for gas, USD."""
    wasted_gas_usd: float
    """What its lost races paid for gas, USD."""
    missed: int
    """Liquidatable episodes it never sent a liquidation at (simulation.metrics.KeeperCards)."""
    latency_blocks_p50: float | None
    """Median blocks from a target's first liquidatable block to its liquidation by this keeper."""
    latency_blocks_max: int | None
    latent_left_share: float | None
    """The part of the latent bad debt (USD x blocks) it sent nothing at; None when there was none."""


class ExternalDoc(_Doc):
    address: str
    registered: bool
    blocks_acted: int
    """Blocks it said it acted on within the block timeout."""
    blocks_missed: int
    """Blocks mined without it (it was late; its transactions went into a later block)."""


class Invariants(_Doc):
    blocks_checked: int
    violations: int


class AdversaryDoc(_Doc):
    kind: str
    addresses: list[str]
    pnl_usd: float
    gas_usd: float


class WindowDoc(_Doc):
    kind: str
    """crash, oracle_outage, keeper_outage, gas_spike."""
    label: str
    start_block: int
    end_block: int
    """First block after the window."""


class SummaryDoc(_Doc):
    """summary.json. A run that stopped before its first block writes only `scenario`, `seed`,
    `status`, `report` (and `fork` on a fork); every other field is then absent."""

    scenario: str
    seed: int
    status: str
    """completed, interrupted, chain_down, chain_error, failed, disk_full, bad_fork, external_absent
    (an outside bot never registered)."""
    report: str
    """"written" or "not written: <reason>"."""
    blocks: int | None = None
    blocks_planned: int | None = None
    market_start: dict[str, float] | None = None
    setup_s: float | None = None
    wall_s: float | None = None
    tx_sent: int | None = None
    tx_reverted: int | None = None
    tx_rejected: int | None = None
    tx_per_s: float | None = None
    reverts_by_kind: dict[str, int] | None = None
    """"<transaction kind>:<custom error>" -> count."""
    oracle_rounds: int | None = None
    liquidations: Liquidations | None = None
    profitable_positions_liquidated: int | None = None
    collateral_lost_usd: float | None = None
    bad_debt_usd: float | None = None
    bad_debt_covered: BadDebtCovered | None = None
    latent_bad_debt_usd: Latent | None = None
    liquidation_queue_peak_usd: float | None = None
    """The most notional left liquidatable but open after any block (the liquidation queue)."""
    insurance_fund_usd: StartEnd | None = None
    lp_share_price: StartEnd | None = None
    collateral_needed_usd: Margining | None = None
    """Peak initial requirement of the book, margined both ways."""
    collateral_to_carry_usd: Margining | None = None
    """The least collateral carrying the book through the path with no liquidation, both ways."""
    cascade: CascadeDoc | None = None
    funding: FundingDoc | None = None
    deleveraging: DeleveragingDoc | None = None
    keepers: dict[str, KeeperDoc] | None = None
    invariants: Invariants | None = None
    rpc_round_trips: int | None = None
    rpc_round_trips_per_block: float | None = None
    adversaries: dict[str, AdversaryDoc] | None = None
    windows: list[WindowDoc] | None = None
    """The scenario's windows (crashes, outages, gas spikes), which the report shades."""
    fork: dict[str, Any] | None = None
    """On a fork: the chain, block, feeds and funding (simulation.fork)."""
    external: dict[str, ExternalDoc] | None = None
    """With --external: each outside bot's address and its lockstep record (simulation.external)."""


def schemas() -> dict[str, dict[str, Any]]:
    from simulation.scenario import Scenario
    from simulation.sweep import SweepFile

    return {
        "scenario": Scenario.model_json_schema(),
        "sweep": SweepFile.model_json_schema(),
        "summary": SummaryDoc.model_json_schema(),
    }


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a published schema is stale")
    args = ap.parse_args(argv)
    stale = []
    for name, schema in schemas().items():
        path = SCHEMA_DIR / f"{name}.schema.json"
        text = _text(schema)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            SCHEMA_DIR.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)} (python -m simulation.schemas rewrites them)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
