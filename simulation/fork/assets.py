"""Checks that the fork's chain holds what its data file says (tokens, decimals, feeds)."""

from __future__ import annotations

from typing import Any

from eth_utils import keccak

from simulation.chains import ChainInfo
from simulation.fork.target import ForkInputError
from simulation.rpc import Rpc, RpcError

# ---------------------------------------------------------------------------------------- checks


def call_at(to: str, data: str, block: str = "latest") -> tuple[str, list[Any]]:
    return "eth_call", [{"to": to, "data": data}, block]


def selector(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


def word(hex_answer: Any) -> int:
    return int(hex_answer, 16) if isinstance(hex_answer, str) and hex_answer != "0x" else -1


def check_assets(rpc: Rpc, chain: ChainInfo, block: int) -> dict[str, int]:
    """Every token and proxy of the chain file has code at the fork block, with the stated decimals.
    Returns each token's total supply at the fork block."""
    items: list[tuple[str, str, int]] = [
        (f"token {s}", t.address, t.decimals) for s, t in chain.tokens.items()
    ]
    items += [(f"feed {s}", f.proxy, f.decimals) for s, f in chain.feeds.items()]
    calls: list[tuple[str, list[Any]]] = []
    for _, address, _ in items:
        calls += [("eth_getCode", [address, "latest"]), call_at(address, selector("decimals()"))]
    res = rpc.batch(calls)
    for i, (what, address, decimals) in enumerate(items):
        code, dec = res[2 * i], res[2 * i + 1]
        if isinstance(code, RpcError):
            raise ForkInputError(
                f"{what}: the upstream cannot serve state at block {block} "
                f"(an archive node is needed for old blocks): {code.message}"
            )
        if code in ("0x", "0x0", None):
            raise ForkInputError(
                f"{what}: no contract at {address} on {chain.name} at block {block} "
                "(wrong chain data file or a block before it was deployed)"
            )
        if isinstance(dec, RpcError) or word(dec) != decimals:
            got = dec.message if isinstance(dec, RpcError) else word(dec)
            raise ForkInputError(
                f"{what} at {address}: decimals() is {got}, the chain data file says {decimals}"
            )
    supply = rpc.batch(
        [call_at(t.address, selector("totalSupply()")) for t in chain.tokens.values()]
    )
    return {s: word(x) for s, x in zip(chain.tokens, supply, strict=True)}
