"""Funding agents with the fork's real tokens: the `balanceOf` storage slot, else impersonation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from simulation.chains import ChainInfo
from simulation.fork.assets import call_at, selector, word
from simulation.fork.target import FundingError
from simulation.rpc import Rpc, RpcError

# --------------------------------------------------------------------------------------- funding


def _balance_calls(token: str, holders: Sequence[str]) -> list[tuple[str, list[Any]]]:
    sel = selector("balanceOf(address)")
    return [call_at(token, sel + h.lower().removeprefix("0x").zfill(64)) for h in holders]


def fund_token(rpc: Rpc, chain: ChainInfo, symbol: str, grants: Sequence[tuple[str, int]]) -> str:
    """Add `amount` (token units) to each recipient's balance. Returns the method that worked."""
    token = chain.tokens[symbol].address
    merged: dict[str, int] = {}
    for who, amount in grants:  # one write per account, however many grants name it
        merged[who.lower()] = merged.get(who.lower(), 0) + amount
    wanted = [(w, a) for w, a in merged.items() if a > 0]
    if not wanted:
        return "none"
    why = _fund_by_storage(rpc, token, wanted)
    if why is None:
        return "storage"
    shortfall = _fund_by_impersonation(rpc, token, chain.tokens[symbol].holders, wanted)
    if shortfall is None:
        return "impersonation"
    raise FundingError(
        f"cannot fund agents with {symbol} ({token}): writing its balance storage {why}, and "
        f"impersonating holders failed: {shortfall}"
    )


def _balances(rpc: Rpc, token: str, accounts: Sequence[str]) -> list[int]:
    return [word(x) for x in rpc.batch(_balance_calls(token, accounts))]


def _fund_by_storage(rpc: Rpc, token: str, grants: Sequence[tuple[str, int]]) -> str | None:
    """Add each amount to the raw slot balanceOf(recipient) reads (flags packed in its high bits, as
    USDC's blacklist bit, stay as they were); None when every balance came out exact, else why not
    (the writes are then undone)."""
    who = [w for w, _ in grants]
    sel = selector("balanceOf(address)")
    # A reference account's reads tell the token's fixed slots (proxy implementation, pause flags) from
    # the one slot per account that holds its balance.
    reference = "0x" + "5a" * 20
    lists = rpc.batch(
        [
            ("eth_createAccessList", [{"to": token, "data": sel + a[2:].zfill(64)}, "latest"])
            for a in [reference, *who]
        ]
    )
    if any(isinstance(x, RpcError) for x in lists):
        return "is impossible here (eth_createAccessList failed)"

    def keys(answer: dict[str, Any]) -> set[tuple[str, str]]:
        return {
            (e["address"].lower(), k)
            for e in answer.get("accessList", [])
            for k in e.get("storageKeys", [])
        }

    fixed = keys(lists[0])
    slots: list[tuple[str, str]] = []
    for a, answer in zip(who, lists[1:], strict=True):
        own = keys(answer) - fixed
        if len(own) != 1:
            return f"is ambiguous: balanceOf({a}) reads {len(own)} account-specific slots"
        slots.append(own.pop())
    before = _balances(rpc, token, who)
    olds = rpc.batch([("eth_getStorageAt", [addr, key, "latest"]) for addr, key in slots])
    if any(isinstance(o, RpcError) for o in olds):
        return "is impossible here (eth_getStorageAt failed)"
    rpc.batch(
        [
            ("anvil_setStorageAt", [addr, key, "0x" + format(int(old, 16) + amount, "064x")])
            for (addr, key), old, (_, amount) in zip(slots, olds, grants, strict=True)
        ]
    )
    after = _balances(rpc, token, who)
    if all(a == b + g for a, b, (_, g) in zip(after, before, grants, strict=True)):
        return None
    rpc.batch(
        [
            ("anvil_setStorageAt", [addr, key, "0x" + old.removeprefix("0x").zfill(64)])
            for (addr, key), old in zip(slots, olds, strict=True)
        ]
    )
    return "does not give the exact balance (a rebasing or share-based token?)"


def _fund_by_impersonation(
    rpc: Rpc, token: str, holders: Sequence[str], grants: Sequence[tuple[str, int]]
) -> str | None:
    """Transfer from the listed holders, richest first, until every recipient has at least what it
    was granted (share-based tokens deliver a wei or two less: the shortfall is sent again).
    None on success, else what was missing."""
    if not holders:
        return "the chain data file lists no holders for it"
    holders = [h.lower() for h in holders]
    who = [w for w, _ in grants]
    holding, now = _balances(rpc, token, holders), _balances(rpc, token, who)
    need, have = sum(a for _, a in grants), sum(max(0, b) for b in holding)
    if have < need:
        return f"the {len(holders)} listed holder(s) own {have} units, the agents need {need}"
    target = [b + a for b, (_, a) in zip(now, grants, strict=True)]
    _impersonate(rpc, holders)
    try:
        for attempt in range(3):
            if attempt:  # what the last round of transfers really delivered
                now, holding = _balances(rpc, token, who), _balances(rpc, token, holders)
            # A retry sends twice the shortfall and 2 wei more: a share-based token rounds a
            # transfer of a wei or two down to nothing.
            short = [
                (w, t - b if attempt == 0 else 2 * (t - b) + 2)
                for w, t, b in zip(who, target, now, strict=True)
                if b < t
            ]
            if not short:
                return None
            failed = _transfer_from(rpc, token, list(zip(holders, holding, strict=True)), short)
            if failed:
                return failed
    finally:
        rpc.batch([("anvil_stopImpersonatingAccount", [h]) for h in holders])
    return "the recipients still received less than granted after three rounds of transfers"


def _impersonate(rpc: Rpc, holders: Sequence[str]) -> None:
    """Let the holders send: impersonated, enough ETH for gas (never less than they had), and an
    EIP-7702 delegation (code 0xef0100...) removed so a transfer is a plain one; a contract holder
    (a Safe, a bridge) keeps its code."""
    rpc.batch([("anvil_impersonateAccount", [h]) for h in holders])
    info = rpc.batch(
        [("eth_getBalance", [h, "latest"]) for h in holders]
        + [("eth_getCode", [h, "latest"]) for h in holders]
    )
    n = len(holders)
    gas_money = 10**20
    rpc.batch(
        [
            ("anvil_setBalance", [h, hex(gas_money)])
            for h, b in zip(holders, info[:n], strict=True)
            if word(b) < gas_money
        ]
    )
    rpc.batch(
        [
            ("anvil_setCode", [h, "0x"])
            for h, c in zip(holders, info[n:], strict=True)
            if isinstance(c, str) and c.startswith("0xef0100")
        ]
    )


def _transfer_from(
    rpc: Rpc, token: str, holders: Sequence[tuple[str, int]], grants: Sequence[tuple[str, int]]
) -> str | None:
    """One block of transfers covering `grants` from the holders (with their current balances),
    richest first."""
    queue = sorted(holders, key=lambda hb: -hb[1])
    sel = selector("transfer(address,uint256)")
    txs: list[tuple[str, str]] = []  # (holder, calldata)
    hi, left = 0, queue[0][1]
    for recipient, amount in grants:
        while amount > 0 and left > 0:
            take = min(amount, left)
            txs.append((queue[hi][0], sel + recipient[2:].zfill(64) + format(take, "064x")))
            amount, left = amount - take, left - take
            if left == 0 and hi + 1 < len(queue):
                hi += 1
                left = queue[hi][1]
        if amount > 0:
            return "the listed holders ran out before every agent was funded"
    used = sorted({h for h, _ in txs})
    counts = rpc.batch([("eth_getTransactionCount", [h, "pending"]) for h in used])
    nonces = {h: int(c, 16) for h, c in zip(used, counts, strict=True)}
    calls: list[tuple[str, list[Any]]] = []
    for h, data in txs:
        tx = {"from": h, "to": token, "data": data, "gas": hex(300_000), "nonce": hex(nonces[h])}
        calls.append(("eth_sendTransaction", [tx]))
        nonces[h] += 1
    hashes = rpc.batch(calls)
    rpc.call("evm_mine", [])
    receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes if isinstance(h, str)])
    failed = sum(1 for h in hashes if not isinstance(h, str)) + sum(
        1 for r in receipts if not isinstance(r, dict) or r.get("status") != "0x1"
    )
    return f"{failed} of {len(txs)} transfers from the holders failed" if failed else None


def clear_account_code(rpc: Rpc, accounts: Iterable[str]) -> None:
    """Agents send plain transactions; on a real chain the well-known dev accounts carry EIP-7702
    delegations (sweepers). Remove any code so they behave as the EOAs they are here."""
    rpc.batch([("anvil_setCode", [a, "0x"]) for a in accounts])
