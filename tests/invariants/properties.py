"""The properties the invariant suite checks: each one function over what the handlers
(tests/invariants/machine.py, risk.py, pool_oracle.py) read, returning its violations as messages (an
empty list when it holds), so a step reports every property it breaks at once. Tolerances are named,
with their units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulation import margin_math as mm

from .harness import TOKENS, ChainState, Harness

LP_ROUNDING_TOLERANCE_QUOTE = 10
"""Quote units (1e-6 USDC): ERC-4626 conversions round down once per deposit, redeem and valuation."""
LIQUIDATION_ROUNDING_TOLERANCE_QUOTE = 2
"""Quote units: a liquidation floors its PnL once in total, a close once per market."""
CROSS_VALUATION_TOLERANCE_QUOTE = 10
"""Quote units: collateral a liquidation sells is valued at the oracle price, rounded down per token."""


# --------------------------------------------------------------------------- books and model


def check_conservation(h: Harness, st: ChainState, usdc_supply: int) -> list[str]:
    """The vault's token balances equal its books (isolated margins, cross balances including the insurance
    fund's, claimable remainders), and no USDC appears or vanishes across everyone who can hold it."""
    errors = []
    vault = h.vault_address
    books = {s: sum(h.coll(st, a, s) for a in h.traders) + st.insurance_coll[s] for s in TOKENS}
    books["USDC"] += sum(p[4] for p in st.positions.values()) + st.total_claimable
    if st.total_deficit != sum(st.deficits.values()):
        errors.append(
            f"totalDeleverageDeficit {st.total_deficit} != sum {sum(st.deficits.values())}"
        )
    for s in TOKENS:
        if (bal := st.balances[s, vault]) != books[s]:
            errors.append(f"vault {s} {bal} != its books {books[s]} (diff {bal - books[s]})")
    if st.total_claimable != sum(st.claimable.values()):
        errors.append(
            f"totalClaimableQuote {st.total_claimable} != sum {sum(st.claimable.values())}"
        )
    total = sum(st.balances["USDC", x] for x in h.holders)
    if total != usdc_supply:
        errors.append(f"USDC across holders {total} != minted {usdc_supply}")
    return errors


def check_market_states(h: Harness, st: ChainState) -> list[str]:
    errors = []
    for m in range(h.n_markets):
        model = h.model_market_state(st, m)
        if st.market_states[m] != model:
            errors.append(f"market {m}: marketState {st.market_states[m]} != model {model}")
    for s in ("WETH", "WBTC"):
        model_vol = h.model_volatility(s, st.latest_round[s])
        if st.vols[s] != model_vol:
            errors.append(f"{s}: hourlyVolatilityWad {st.vols[s]} != model {model_vol}")
    return errors


def check_health_and_scans(h: Harness, st: ChainState, lens: dict[str, Any]) -> list[str]:
    """The lens's health equals the model's; its scans answer (a stale feed never makes them revert) and
    list exactly what the model finds liquidatable among what can be priced."""
    errors = []
    states = h.states(st)
    model_iso = set()
    for pid, p in st.positions.items():
        model = h.model_isolated_health(p, states)
        if model is None:
            continue  # its market has no price: the lens reverts, the scans skip it
        chain = lens["isolated"][pid]
        if chain is None or mm.Health(*chain) != model:
            errors.append(f"position {pid}: isolatedHealth {chain} != model {model}")
        if model.liquidatable:
            model_iso.add(pid)
    model_cross, with_positions = set(), set()
    for a in h.traders:
        model = h.model_account_health(st, a, states)
        if any(st.cross[a][m][0] for m in range(h.n_markets)):
            with_positions.add(a)
            if model is not None and model.liquidatable:
                model_cross.add(a)
        chain = lens["accounts"][a]
        if model is not None and (chain is None or mm.Health(*chain) != model):
            errors.append(f"account {a}: accountHealth {chain} != model {model}")
    if set(st.cross_accounts) != with_positions or len(st.cross_accounts) != len(with_positions):
        errors.append(
            f"crossAccounts {st.cross_accounts} != with positions {sorted(with_positions)}"
        )
    if lens["scanIsolated"] is None or lens["scanCross"] is None:
        errors.append(
            f"a lens scan reverted: isolated {lens['scanIsolated']}, cross {lens['scanCross']}"
        )
        return errors
    ids, scanned = lens["scanIsolated"]
    if set(ids) != model_iso or scanned != len(st.positions):
        errors.append(
            f"scanIsolated {ids} ({scanned}) != model {sorted(model_iso)} of {len(st.positions)}"
        )
    listed = {h.ck(a) for a in lens["scanCross"][0]}
    if listed != model_cross:
        errors.append(f"scanCross {sorted(listed)} != model {sorted(model_cross)}")
    return errors


def check_open_list(st: ChainState) -> list[str]:
    bad = [(pid, p[2], i) for i, (pid, p) in enumerate(st.positions.items()) if p[2] != i]
    return [f"openIndex out of step with the open list (id, openIndex, slot): {bad}"] if bad else []


def check_isolation(
    name: str, before: ChainState, after: ChainState, positions: Any, accounts: Any
) -> list[str]:
    """A step changes no isolated position and no cross account it does not touch."""
    errors = []
    for pid, p in before.positions.items():
        if pid in positions:
            continue
        q = after.positions.get(pid)
        if q is None:
            errors.append(f"{name}: untouched position {pid} disappeared")
        elif p[:2] + p[3:] != q[:2] + q[3:]:  # openIndex (p[2]) moves on swap-and-pop, by design
            errors.append(f"{name}: untouched position {pid} changed {p} -> {q}")
    for a, s in before.cross.items():
        if a not in accounts and after.cross[a] != s:
            errors.append(f"{name}: untouched account {a} changed {s} -> {after.cross[a]}")
    return errors


# --------------------------------------------------------------------------- LP share price


@dataclass
class LpRoundTrip:
    """An LP's deposit, a trade by someone else, and the LP's attempt to exit with everything (request and
    claim), all at once (quote units), against the counterfactual: the same trade without the deposit and
    the exit."""

    deposit: int
    redeemed: int  # what the exit paid (0 when the shares were locked or the claim not ready)
    still_held: int  # what the depositor's remaining shares (and a pending exit) are worth now
    share_wad: int  # the depositor's fraction of the pool's value right after its deposit
    others_before: int  # every other LP's shares' value before the deposit
    others_after: int
    others_counterfactual: int


def check_lp_round_trip(rt: LpRoundTrip) -> list[str]:
    """The share price moves only with traders' PnL, fees and bad debt: no LP gains or loses value through
    another LP's deposit and redemption in the same block. The other LPs end with what they would have had
    without it, less only the depositor's pro-rata share of what the pool earned while it stayed; the
    depositor leaves with at most what it put in plus that share."""
    errors, tol = [], LP_ROUNDING_TOLERANCE_QUOTE
    gain = rt.redeemed + rt.still_held - rt.deposit
    earned = rt.others_after - rt.others_before + gain  # what all LPs earned, as it happened
    if rt.others_after + gain < rt.others_counterfactual - tol:
        errors.append(
            f"other LPs lost {rt.others_counterfactual - rt.others_after - gain} quote units through a "
            f"deposit of {rt.deposit} and its redeem (value {rt.others_after} + depositor's gain {gain} "
            f"< {rt.others_counterfactual} without them)"
        )
    if rt.still_held == 0 and rt.others_after < rt.others_counterfactual - tol:
        errors.append(
            f"the depositor left in the same block and the other LPs hold {rt.others_after} "
            f"< {rt.others_counterfactual} without its deposit and redeem"
        )
    fair = mm.mul_wad_down(max(earned, 0), rt.share_wad)
    if gain > fair + tol:
        errors.append(
            f"the depositor gained {gain} on {rt.deposit} (redeemed {rt.redeemed}, holds {rt.still_held}), "
            f"more than its pro-rata {fair} of the {earned} earned while it stayed"
        )
    return errors


def check_lp_exit(
    step: str, paid: int, cap: int, others_before: int, others_after: int
) -> list[str]:
    """An exit's request pays nothing and moves no other LP's value; its claim pays at most `cap` (the
    lower of the escrowed shares' value at the request and now) and lowers no other LP's value (what the
    shares were worth above the cap stays with them). Up to rounding."""
    errors, tol = [], LP_ROUNDING_TOLERANCE_QUOTE
    if paid > cap:
        errors.append(f"an exit's {step} paid {paid}, more than the {cap} its shares were worth")
    if others_after < others_before - tol or (
        step == "request" and others_after > others_before + tol
    ):
        errors.append(
            f"an exit's {step} moved the other LPs' value {others_before} -> {others_after}"
        )
    return errors


# --------------------------------------------------------------------------- liquidation vs close


@dataclass
class LiquidationVsClose:
    """Quote units the owner's side holds after a liquidation by its second address (the keeper), against
    what the owner closing (or reducing) the same size itself leaves it with, from the same state."""

    what: str
    owner_side: int
    by_closing: int | None  # None: the owner cannot close (the close would be underwater)
    remaining: int  # what the liquidation left the owner
    tolerance: int = LIQUIDATION_ROUNDING_TOLERANCE_QUOTE


def check_liquidation_vs_close(c: LiquidationVsClose) -> list[str]:
    """A liquidation never pays the owner's side more than closing the position would."""
    if c.by_closing is None:
        # Underwater: closing pays nothing, so nothing may remain for the owner (the keeper's reward comes
        # from the waterfall, so that someone liquidates what the owner cannot close).
        if c.remaining > 0:
            return [
                f"{c.what}: closing is underwater but the liquidation left the owner {c.remaining}"
            ]
        return []
    if c.owner_side > c.by_closing + c.tolerance:
        return [
            f"{c.what}: liquidating from a second address pays the owner's side {c.owner_side}, "
            f"closing pays {c.by_closing} (+{c.owner_side - c.by_closing} quote units)"
        ]
    return []


# --------------------------------------------------------------------------- stale feeds


def check_stale_feed_liquidation(
    stale: str,
    liquidatable: set[str],
    outcomes: dict[str, str | None],
    scan_cross: set[str] | None,
    scans_answered: bool,
) -> list[str]:
    """A stale feed never blocks the liquidation of an account that holds that asset: every account the
    model finds liquidatable (the stale collateral at 0, no position in a market without a price) is listed
    by the lens's scan and its liquidation succeeds; the lens's scans never revert."""
    errors = []
    if not scans_answered:
        errors.append(f"{stale} stale: a lens scan reverted")
    if scan_cross is not None and not liquidatable <= scan_cross:
        errors.append(
            f"{stale} stale: scanCross {sorted(scan_cross)} misses {sorted(liquidatable - scan_cross)}"
        )
    for account, error in outcomes.items():
        if error is not None:
            errors.append(
                f"{stale} stale: liquidating {account} (liquidatable by the model) reverted: {error}"
            )
    return errors
