"""Protocol invariants checked against the chain during a run; each check returns its violations."""

from __future__ import annotations

from simulation.abi import ContractAbi
from simulation.rpc import Rpc, RpcError
from simulation.state import SCAN_PAGE, ChainReader, Snapshot

TOKENS = ("USDC", "WETH", "WBTC")


def _balances(
    rpc: Rpc, reader: ChainReader, addresses: dict[str, str], abis: dict[str, ContractAbi]
) -> tuple[dict[str, int], dict[str, dict[str, int]], dict[str, bool]]:
    """The vault's token balances and its books, one batch (with the lens's scans, and whether each
    reverted): every agent cross account's balances, the
    insurance fund's (collateral forfeited to it), and the remainders owners have yet to claim (as the
    pseudo-account "claimable", in USDC)."""
    vault, token, v = abis["MarginVault"], reader.token, addresses["MarginVault"]
    accounts = [*reader.cross_accounts, addresses["InsuranceFund"]]
    calls = [reader._call(addresses[t], token["balanceOf"], v) for t in TOKENS]
    calls += [
        reader._call(v, vault["collateralBalance"], acct, addresses[t])
        for acct in accounts
        for t in TOKENS
    ]
    calls.append(reader._call(v, vault["totalClaimableQuote"]))
    lens = abis["MarginLens"]
    scan_calls = [reader._call(addresses["MarginLens"], lens[s], 0, SCAN_PAGE) for s in SCANS]
    res = rpc.batch(calls + scan_calls)
    res, scans = res[: len(calls)], res[len(calls) :]
    if any(isinstance(r, RpcError) for r in res):
        raise RuntimeError("balance read failed during the invariant check")
    ints = [int(r, 16) for r in res]
    held = dict(zip(TOKENS, ints[:3], strict=True))
    books = {
        acct: dict(zip(TOKENS, ints[3 + 3 * i : 6 + 3 * i], strict=True))
        for i, acct in enumerate(accounts)
    }
    books["claimable"] = {"USDC": ints[-1], "WETH": 0, "WBTC": 0}
    reverted = {name: isinstance(r, RpcError) for name, r in zip(SCANS, scans, strict=True)}
    return held, books, reverted


SCANS = ("scanIsolated", "scanCross")
"""The lens's paged scans, which keepers call every block: they must answer whatever a feed does."""


def check_scans_answer(reverted: dict[str, bool]) -> list[tuple[str, str]]:
    """A stale or invalid feed never makes the lens's scans revert (a keeper would find nothing)."""
    return [("scan_reverted", f"MarginLens.{name} reverted") for name, r in reverted.items() if r]


def check_conservation(
    held: dict[str, int], books: dict[str, dict[str, int]], snap: Snapshot
) -> list[tuple[str, str]]:
    out = []
    owed = {t: sum(b[t] for b in books.values()) for t in TOKENS}
    owed["USDC"] += sum(p.margin_quote for p in snap.positions.values())
    for t in TOKENS:
        if held[t] != owed[t]:
            out.append(("conservation", f"vault holds {held[t]} {t} but its books owe {owed[t]}"))
    return out


def check_scans(snap: Snapshot) -> list[tuple[str, str]]:
    """The lens scan must list exactly what the reference model finds liquidatable. A stale feed hides only
    what cannot be priced (positions in its market, accounts trading it): every other position, and every
    account holding that asset as collateral only (valued 0), is checked as usual."""
    out = []
    model = set()
    priced = {m.market_id for m in snap.markets if m.price_wad is not None}
    for p in snap.positions.values():
        h = snap.market(p.market_id).health(p.margin_and_funding_usd, p.size_wad, p.entry_price_wad)
        if h is not None and h.liquidatable:
            model.add(p.position_id)
    if model != set(snap.liquidatable_isolated):
        out.append(
            ("scan_isolated", f"model {sorted(model)} != lens {sorted(snap.liquidatable_isolated)}")
        )
    cross = {
        a
        for a, c in snap.cross.items()
        if c.positions and set(c.positions) <= priced and c.equity_usd < c.maintenance_usd
    }
    if cross != set(snap.liquidatable_cross):
        out.append(
            ("scan_cross", f"model {sorted(cross)} != lens {sorted(snap.liquidatable_cross)}")
        )
    return out


def check_invariants(
    rpc: Rpc,
    reader: ChainReader,
    addresses: dict[str, str],
    snap: Snapshot,
    abis: dict[str, ContractAbi],
) -> list[tuple[str, str]]:
    held, books, reverted = _balances(rpc, reader, addresses, abis)
    return check_conservation(held, books, snap) + check_scans(snap) + check_scans_answer(reverted)
