"""A liquidation bot outside the run, in plain web3.py: it races the run's own keepers in lockstep.

    marginsim run scenarios/crash.yaml --external web3bot --out runs/race &
    python examples/outside/web3_keeper.py --manifest runs/race/manifest.json --name web3bot

Each block it asks the lens which isolated positions and cross accounts are liquidatable, sends one
signed liquidation for each (priority fee --tip-gwei), and tells the run it has acted. Its
liquidations, rewards, gas and lost races are in the run's keeper table under its name. It reads
only the run's manifest: the RPC URL, the addresses and ABIs, its key, and the sync URL.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

GAS = {"liquidateIsolated": 600_000, "liquidateCross": 960_000}
PAGE = 200


def call(url: str, body: dict[str, Any] | None = None, timeout_s: float = 60) -> dict[str, Any]:
    """GET (no body) or POST JSON to the run's sync endpoint."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:
        return json.loads(answer.read())


def wait_for(path: Path, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            sys.exit(f"web3_keeper: no manifest at {path} after {timeout_s:g} s")
        time.sleep(0.2)
    return json.loads(path.read_text())


def liquidatable(lens: Any) -> list[tuple[str, Any]]:
    """Every (function, argument) the lens finds liquidatable now, isolated then cross."""
    found: list[tuple[str, Any]] = []
    for scan, fn in (
        (lens.functions.scanIsolated, "liquidateIsolated"),
        (lens.functions.scanCross, "liquidateCross"),
    ):
        start = 0
        while True:
            targets, scanned = scan(start, PAGE).call()
            found += [(fn, t) for t in targets]
            if scanned < PAGE:
                break
            start += scanned
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--name", required=True)
    p.add_argument(
        "--key", help="private key, when the run was given an address (--external NAME=0x..)"
    )
    p.add_argument("--tip-gwei", type=float, default=3.0)
    p.add_argument("--log", type=Path, help="append each sent transaction here, one JSON line each")
    args = p.parse_args()
    m = wait_for(args.manifest, 300)
    me = m["external"][args.name]
    if not (args.key or me.get("private_key")):
        sys.exit(f"web3_keeper: {args.name} runs at its own address: give its key with --key")
    account = Account.from_key(args.key or me["private_key"])
    w3 = Web3(Web3.HTTPProvider(m["rpc_url"]))
    vault = w3.eth.contract(m["addresses"]["MarginVault"], abi=m["abis"]["MarginVault"])
    lens = w3.eth.contract(m["addresses"]["MarginLens"], abi=m["abis"]["MarginLens"])
    tip = int(args.tip_gwei * 10**9)
    sync = m["sync_url"]
    call(f"{sync}/register", {"name": args.name})
    block = 0
    while True:
        try:
            step = call(f"{sync}/next?after={block}")
        except (urllib.error.URLError, ConnectionError):
            return 0  # the run is over and its endpoint gone
        if step.get("finished"):
            return 0
        if step.get("block") is None:
            continue  # no block yet: ask again
        block = step["block"]
        nonce = w3.eth.get_transaction_count(account.address, "pending")
        # the block's base fee when the run forces one (a gas spike), else what the last one paid
        base_fee = max(w3.eth.get_block("latest")["baseFeePerGas"], step.get("base_fee_wei") or 0)
        for fn, target in liquidatable(lens):
            tx = getattr(vault.functions, fn)(target).build_transaction(
                {
                    "from": account.address,
                    "nonce": nonce,
                    "gas": GAS[fn],
                    "maxPriorityFeePerGas": tip,
                    "maxFeePerGas": 4 * base_fee + tip,
                    "chainId": m["chain_id"],
                }
            )
            try:
                sent = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
            except ValueError as e:  # refused by the node (its pool is full, a fee too low): next
                print(f"web3_keeper: block {block}: {fn}({target}) refused: {e}", file=sys.stderr)
                continue
            nonce += 1
            if args.log:
                with args.log.open("a") as log:
                    line = {"block": block, "hash": "0x" + sent.hex().removeprefix("0x"), "fn": fn}
                    log.write(json.dumps({**line, "target": str(target)}) + "\n")
        try:
            call(f"{sync}/acted", {"name": args.name, "block": block})
        except urllib.error.HTTPError as e:
            if e.code != 409:  # 409: too late, the block is being mined (a miss); go on
                raise


if __name__ == "__main__":
    sys.exit(main())
