"""The two chains a run can drive, behind one transport: anvil (a real local node, JSON-RPC over HTTP)
and revm (simulation.revm_chain, in process). Deployment, agents, metrics and reports see a web3 handle
and an Rpc-like transport (`call`, `batch`, `round_trips`) and do not know which one it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3 import Web3

BACKENDS = ("anvil", "revm")


@dataclass
class Transport:
    w3: Web3
    rpc: Any
    """simulation.rpc.Rpc or simulation.revm_chain.InProcessRpc."""
    url: str


def http_transport(url: str) -> Transport:
    from simulation.rpc import Rpc

    return Transport(Web3(Web3.HTTPProvider(url)), Rpc(url), url)


def revm_transport(accounts: int) -> Transport:
    """A fresh in-process chain with `accounts` dev accounts (anvil's, same balances and genesis)."""
    from simulation.revm_chain import InProcessRpc, RevmChain, RevmProvider

    chain = RevmChain(accounts=accounts)
    rpc = InProcessRpc(chain)
    return Transport(Web3(RevmProvider(chain)), rpc, rpc.url)
