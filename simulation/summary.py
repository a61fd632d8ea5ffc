"""summary.json's content: what a run measured, from the engine's counters and snapshots."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from simulation.depth import share_of_move
from simulation.metrics import latent_bad_debt, open_funding_usd, share_price
from simulation.scenario import KeeperConfig

if TYPE_CHECKING:
    from simulation.engine import Engine
    from simulation.scenario import Scenario

WALL_CLOCK_FIELDS = ("wall_s", "tx_per_s", "setup_s")
"""Summary fields that depend on the machine, not on the scenario and seed."""


def build_summary(
    sc: Scenario, e: Engine, wall_s: float, status: str, setup_s: float
) -> dict[str, Any]:
    c, start, end = e.counters, e.start, e.last
    assert start is not None and end is not None
    e.cards.finish(c.keepers, e.blocks_done)

    out = {
        "scenario": sc.name,
        "seed": sc.seed,
        "status": status,
        "blocks": e.blocks_done,
        "blocks_planned": sc.blocks,
        "market_start": dict(sc.market.start),
        "setup_s": round(setup_s, 3),
        "wall_s": round(wall_s, 3),
        "tx_sent": c.tx_sent,
        "tx_reverted": c.tx_reverted,
        "tx_rejected": c.tx_rejected,
        "tx_per_s": round(c.tx_sent / wall_s, 1) if wall_s > 0 else 0.0,
        "reverts_by_kind": dict(sorted(c.reverts_by_kind.items())),
        "oracle_rounds": c.oracle_rounds,
        "liquidations": {
            "count": c.liquidations,
            "isolated": c.liquidations_isolated,
            "cross": c.liquidations_cross,
            "notional_usd": round(c.liquidated_notional_usd, 2),
        },
        "profitable_positions_liquidated": c.profitable_positions_liquidated,
        "collateral_lost_usd": round(c.collateral_lost_usd, 2),
        "bad_debt_usd": round(c.bad_debt_usd, 6),
        "bad_debt_covered": {
            "insurance_usd": round(c.bad_debt_from_insurance_usd, 6),
            "lp_pool_usd": round(c.bad_debt_from_pool_usd, 6),
            "deleveraging_usd": round(c.bad_debt_to_deleverage_usd, 6),
        },
        "deleveraging": {
            "positions": c.deleveraged,
            "haircut_usd": round(c.deleverage_haircut_usd, 6),
            "deficit_peak_usd": round(c.deficit_peak_usd, 6),
            "deficit_end_usd": round(
                sum(m.deficit_long_quote + m.deficit_short_quote for m in end.markets) / 1e6, 6
            ),
        },
        "latent_bad_debt_usd": {
            "peak": round(c.latent_bad_debt_peak_usd, 6),
            "end": round(latent_bad_debt(end)[1], 6),
            "blocks": c.latent_bad_debt_blocks,
        },
        "liquidation_queue_peak_usd": round(c.queue_peak_usd, 2),
        "insurance_fund_usd": {
            "start": start.insurance_quote / 1e6,
            "end": end.insurance_quote / 1e6,
        },
        "lp_share_price": {
            "start": round(share_price(start), 8),
            "end": round(share_price(end), 8),
        },
        "collateral_needed_usd": {
            "isolated_margining": round(c.peak_capital_isolated_usd, 2),
            "cross_margining": round(c.peak_capital_netted_usd, 2),
            "portfolio_margining": round(c.peak_capital_portfolio_usd, 2),
        },
        "collateral_to_carry_usd": {
            "isolated_margining": round(c.carry.isolated_usd, 2),
            "cross_margining": round(c.carry.cross_usd, 2),
            "portfolio_margining": round(c.carry.portfolio_usd, 2),
        },
        "cascade": cascade_summary(e),
        "funding": {
            "to_pool_usd": round(c.funding_to_pool_usd, 6),
            "open_usd": round(open_funding_usd(end), 6),
            "peak_rate_pct_day": {
                s: round(100 * r, 6) for s, r in sorted(c.funding_peak_rate.items())
            },
        },
        "keepers": {
            name: {
                **asdict(k),
                "rewards_usd": round(k.rewards_usd, 6),
                "gas_usd": round(k.gas_usd, 6),
                "wasted_gas_usd": round(k.wasted_gas_usd, 6),
            }
            for name, k in c.keepers.items()
        },
        "invariants": {"blocks_checked": c.invariant_blocks, "violations": c.invariant_violations},
        "rpc_round_trips": e.rpc.round_trips,
        "rpc_round_trips_per_block": round(e.rpc.round_trips / e.blocks_done, 3)
        if e.blocks_done
        else 0.0,
    }
    if "USDC" in sc.market.start:
        low = c.quote_price_low_wad
        out["quote"] = {
            "valued_at": "feed" if e.protocol.quote_at_feed else "par",
            "market_low_usd": round(float(e.prices["USDC"].min()), 6),
            "vault_low_usd": round(low / 1e18, 6) if low is not None else None,
            "unseen_liquidatable_peak": c.quote_unseen_peak,
            "overvalued_peak_usd": round(c.quote_overvalued_peak_usd, 2),
        }
    if e.agents.adversaries:
        out["adversaries"] = adversaries_summary(e)
    if e.lockstep is not None:
        out["external"] = e.lockstep.summary()
    out["windows"] = scenario_windows(sc)
    return out


def cascade_summary(e: Engine) -> dict[str, Any]:
    """Induced liquidations, cascade rounds, and per asset the share of the largest fall that liquidation
    impact accounts for and the deepest it went (simulation.depth)."""
    depth = e.depth
    out: dict[str, Any] = {
        "depth": depth is not None,
        "induced_liquidations": e.cascade.induced,
        "rounds": e.cascade.rounds,
        "share_of_move": {},
        "peak_impact_pct": {},
    }
    if depth is None:
        return out
    for symbol in depth.cfg.depth_usd:
        impact = [b.get(symbol, 0.0) for b in depth.liq_by_block]
        prices = [h[symbol] for h in e.history[: len(impact)]]
        out["share_of_move"][symbol] = round(share_of_move(prices, impact), 6)
        out["peak_impact_pct"][symbol] = round(math.expm1(min(impact, default=0.0)) * 100, 6)
    return out


def scenario_windows(sc: Scenario) -> list[dict[str, Any]]:
    """The scenario's windows, for the report to shade: crashes, oracle and keeper outages, gas
    spikes (block ranges, end exclusive)."""
    out: list[dict[str, Any]] = []
    for e in sc.market.events:
        what = "flash crash" if e.recover_blocks else "crash"
        out.append(
            {
                "kind": "crash",
                "label": f"{what} {', '.join(e.assets)} -{e.drop:.0%}",
                "start_block": e.start_block,
                "end_block": e.end_block,
            }
        )
    for o in sc.oracle.outages:
        assets = f" ({', '.join(o.assets)})" if o.assets else ""
        out.append(
            {
                "kind": "oracle_outage",
                "label": f"oracle outage{assets}",
                "start_block": o.start_block,
                "end_block": o.end_block,
            }
        )
    for k in sc.keepers:
        for w in k.outages if isinstance(k, KeeperConfig) else ():
            out.append(
                {
                    "kind": "keeper_outage",
                    "label": f"keeper {k.name} down",
                    "start_block": w.start_block,
                    "end_block": w.end_block,
                }
            )
    for w in sc.base_fee:
        out.append(
            {
                "kind": "gas_spike",
                "label": f"base fee {w.gwei:g} gwei",
                "start_block": w.start_block,
                "end_block": w.end_block,
            }
        )
    return out


def adversaries_summary(e: Engine) -> dict[str, Any]:
    """Per adversary: kind, addresses, PnL after gas and the gas it paid (USD)."""
    pnl = e.adversary_pnl()
    return {
        a.name: {
            "kind": a.cfg.kind,
            "addresses": list(a.addresses),
            "pnl_usd": round(pnl[a.name], 2),
            "gas_usd": round(e.adv_gas_usd[a.name], 2),
        }
        for a in e.agents.adversaries
    }


def fork_summary(fork_info: dict[str, Any], engine: Engine | None) -> dict[str, Any]:
    """The summary's `fork` section: the set-up's, with the rounds the run wrote."""
    for symbol, f in (engine.fork.feeds if engine and engine.fork else {}).items():
        entry = fork_info["feeds"][symbol]
        entry["last_round_id"] = (f.phase << 64) | f.round
        entry["rounds_written"] = entry["last_round_id"] - entry["first_round_id"]
    return fork_info
