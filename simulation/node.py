"""`marginsim node`: a long-lived local chain with the protocol deployed and a few positions open.

Starts anvil on 127.0.0.1:<port> (automine, so every `cast send` mines at once), deploys the
system, pushes a calm volatility window of oracle rounds, funds every dev account with USDC, WETH and
WBTC and approves the vault and the LP pool for them, seeds positions as the demo does, writes
Foundry-format artifacts (out/<Source>.sol/<Contract>.json, beside the project's foundry.toml, so
cast decodes the protocol's errors and events) and a manifest (chain id, RPC URL, addresses, ABIs,
market ids, units, dev accounts with their private keys), and stays up until SIGINT or SIGTERM. anvil
is stopped on every way out.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from eth_account import Account
from eth_utils import abi_to_signature, function_abi_to_4byte_selector
from web3 import Web3

from simulation.build import Artifact, compile_contracts
from simulation.chain import ANVIL_MNEMONIC, AnvilNode, ChainError
from simulation.demo import calm_window, seed_positions
from simulation.deploy import Deployment, deploy_system
from simulation.paths import PROJECT_ROOT

DEV_ACCOUNTS = 10
FUNDING = {"USDC": 1_000_000 * 10**6, "WETH": 1_000 * 10**18, "WBTC": 100 * 10**8}
"""What every dev account holds when the node is up, in each token's own units."""
MAX_UINT = 2**256 - 1
FOUNDRY_OUT = PROJECT_ROOT / "out"
"""foundry.toml's `out`: where cast looks for the project's artifacts."""
UNITS = {
    "size": "wad: units of the base asset times 1e18, signed (+ long, - short)",
    "price": "wad: USD per unit of the base asset times 1e18 (priceWad, entryPriceWad, fillPriceWad)",
    "margin, amounts of the quote": "the quote token's units (USDC: 6 decimals)",
    "health, equity, requirements, PnL (…Usd)": "USD times 1e18",
    "ratios, fees, penalties, shares of (…Wad)": "wad: 0.05e18 is 5 %",
    "collateral amounts": "the token's own units (WETH 18 decimals, WBTC 8)",
    "LP shares": "18 decimals",
    "feed answers": "8 decimals (Chainlink's USD feeds)",
}
"""The protocol's units, in the manifest and the README."""


class _Stop(Exception):
    """Raised out of whatever runs when SIGINT or SIGTERM arrives."""


def run_node(port: int, manifest: Path) -> int:
    if problem := _port_problem(port):
        print(f"marginsim node: cannot use port {port} on 127.0.0.1: {problem}", file=sys.stderr)
        return 2
    manifest.unlink(missing_ok=True)  # a stale manifest must not pass for this node's
    artifacts = compile_contracts()
    node = AnvilNode(port=port)
    try:
        with _until_signal():
            try:  # not `with node`: a signal inside start() would skip __exit__
                node.start()
                _serve(node, artifacts, manifest)
            finally:
                node.stop()
    except ChainError as e:
        print(f"marginsim node: {e}", file=sys.stderr)
        return 1
    print("marginsim node: anvil stopped", flush=True)
    return 0


def _serve(node: AnvilNode, artifacts: Mapping[str, Artifact], manifest: Path) -> None:
    """Deploy, seed, write the manifest, print the summary, then sleep until a signal."""
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    d = deploy_system(w3, artifacts, rpc_url=node.rpc_url)
    calm_window(w3, d)
    fund_dev_accounts(w3, d)
    seed_positions(w3, d)
    write_foundry_artifacts(artifacts, FOUNDRY_OUT)
    _write_manifest(_manifest(w3, d), manifest)
    print(_summary(d, manifest), flush=True)
    while True:
        signal.pause()


def fund_dev_accounts(w3: Web3, d: Deployment) -> None:
    """Every dev account gets FUNDING (minted by the deployer, who owns the mock tokens) and approves
    the vault and the LP pool for all of it: a fresh account can trade, post collateral and provide
    liquidity at once. Sent without waiting, then the last receipt of each sender awaited (automine
    mines one transaction per block, in order)."""
    last: dict[str, Any] = {}
    spenders = (d.addresses["MarginVault"], d.addresses["LPPool"])
    for who in w3.eth.accounts[:DEV_ACCOUNTS]:
        for symbol, amount in FUNDING.items():
            token = d.contract(symbol)
            last[d.deployer] = token.functions.mint(who, amount).transact({"from": d.deployer})
            for spender in spenders:
                fn = token.functions.approve(spender, MAX_UINT)
                last[who] = fn.transact({"from": who})
    for tx in last.values():
        if w3.eth.wait_for_transaction_receipt(tx)["status"] != 1:
            raise RuntimeError("funding the dev accounts reverted")


def foundry_artifact(a: Artifact) -> dict[str, Any]:
    """One contract as Foundry writes it (the fields cast reads: abi, both bytecodes, selectors)."""
    functions: list[Any] = [f for f in a.abi if f["type"] == "function"]
    return {
        "abi": a.abi,
        "bytecode": {"object": a.bytecode, "sourceMap": "", "linkReferences": {}},
        "deployedBytecode": {
            "object": a.deployed_bytecode,
            "sourceMap": "",
            "linkReferences": {},
            "immutableReferences": {},
        },
        "methodIdentifiers": {
            abi_to_signature(f): function_abi_to_4byte_selector(f).hex() for f in functions
        },
    }


def write_foundry_artifacts(artifacts: Mapping[str, Artifact], out: Path) -> list[Path]:
    """out/<Source>.sol/<Contract>.json for every contract, as Foundry lays them out."""
    paths = []
    for name, a in sorted(artifacts.items()):
        path = out / a.source_path.name / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_manifest(foundry_artifact(a), path)
        paths.append(path)
    return paths


def _port_problem(port: int) -> str | None:
    """Why anvil could not listen on 127.0.0.1:port, or None if it can."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return "it is already in use (stop that process or pick another with --port)"
            return e.strerror or str(e)
    return None


@contextlib.contextmanager
def _until_signal() -> Iterator[None]:
    """Turn the first SIGINT/SIGTERM into _Stop (swallowed here, after inner cleanup ran);
    further ones are ignored so they cannot interrupt that cleanup."""
    sigs = (signal.SIGINT, signal.SIGTERM)

    def handler(signum: int, frame: FrameType | None) -> None:
        for s in sigs:
            signal.signal(s, signal.SIG_IGN)
        raise _Stop(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield
    except _Stop:
        pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def dev_accounts(n: int = DEV_ACCOUNTS, start: int = 0) -> list[dict[str, str]]:
    """anvil's accounts `start` to `n` - 1 (its standard mnemonic) with their private keys."""
    Account.enable_unaudited_hdwallet_features()
    accounts = []
    for i in range(start, n):
        acct = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        key = "0x" + acct.key.hex().removeprefix("0x")
        accounts.append({"address": acct.address, "private_key": key})
    return accounts


def _manifest(w3: Web3, d: Deployment) -> dict[str, Any]:
    vault = d.contract("MarginVault")
    ids, _ = vault.functions.openPositions(0, 1000).call()
    data = d.manifest()
    data["market_ids"] = dict(d.markets)
    data["mnemonic"] = ANVIL_MNEMONIC
    data["dev_accounts"] = dev_accounts()
    data["funded"] = {
        "tokens": dict(FUNDING),
        "approved": ["MarginVault", "LPPool"],
        "note": "every dev account, in each token's own units; the vault and the pool approved",
    }
    data["units"] = dict(UNITS)
    data["foundry_artifacts"] = str(FOUNDRY_OUT)
    data["seeded"] = {
        "isolated_positions": list(ids),
        "cross_accounts": list(vault.functions.crossAccounts(0, 1000).call()),
    }
    nodes = [Web3.to_checksum_address(a) for a in w3.eth.accounts[:DEV_ACCOUNTS]]
    if nodes != [a["address"] for a in data["dev_accounts"]]:
        raise RuntimeError("anvil's accounts do not match the keys derived from its mnemonic")
    return data


def _write_manifest(data: dict[str, Any], path: Path) -> None:
    """Atomically, so a reader polling for the file never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def _summary(d: Deployment, manifest: Path) -> str:
    a = d.addresses
    return "\n".join(
        [
            f"marginsim node: anvil at {d.rpc_url} (chain id {d.chain_id}), automine on",
            f"  manifest     {manifest.resolve()}",
            f"  MarginVault  {a['MarginVault']}",
            f"  MarginLens   {a['MarginLens']}",
            f"  USDC         {a['USDC']}",
            f"  markets      {', '.join(f'{k}={v}' for k, v in d.markets.items())}",
            "  dev accounts: anvil's standard mnemonic; keys are in the manifest; each holds "
            "1,000,000 USDC, 1,000 WETH and 100 WBTC, the vault and the pool approved",
            f"  artifacts    {FOUNDRY_OUT}/<Source>.sol/<Contract>.json (Foundry's layout)",
            "health of isolated position #1 (equity, initial, maintenance; USD wad):",
            f'  cast call {a["MarginLens"]} "isolatedHealth(uint256)((int256,uint256,uint256))" 1'
            f" --rpc-url {d.rpc_url}",
            "a revert, decoded (from the project's root; cast compiles once, ~20 s):",
            f'  cast call {a["MarginVault"]} "openIsolated(uint256,int256,uint256)" 0 {10**18} 1'
            f" --from {d.deployer} --trace --with-local-artifacts --rpc-url {d.rpc_url}",
            "Ctrl-C (or SIGTERM) stops anvil.",
        ]
    )
