"""A Silverback bot outside the run: it liquidates in lockstep with `marginsim run --external`.

    ./scripts/silverback_race.sh          # installs Silverback, runs a crash with this bot racing

Silverback calls `liquidate` on every new block of the run's anvil (the polling runner, through ape's
foundry provider at APE_FOUNDRY_HOST). The bot asks the run which block is open, scans the lens for
liquidatable positions and cross accounts, sends one signed liquidation for each and says it has
acted (the scan and the sync call are examples/outside/web3_keeper.py's). It reads the run's manifest
(MARGINSIM_MANIFEST) and its name (MARGINSIM_BOT).
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
from pathlib import Path
from typing import Any

from ape import chain
from eth_account import Account
from silverback import SilverbackBot

# the lens scan, the gas limits and the sync call are the plain web3.py bot's
from examples.outside.web3_keeper import GAS, call, liquidatable

MANIFEST = json.loads(Path(os.environ["MARGINSIM_MANIFEST"]).read_text())
NAME = os.environ.get("MARGINSIM_BOT", "silverback")
ME = Account.from_key(os.environ.get("MARGINSIM_KEY") or MANIFEST["external"][NAME]["private_key"])
TIP_WEI = int(float(os.environ.get("MARGINSIM_TIP_GWEI", "2")) * 10**9)

bot = SilverbackBot()
turn = threading.Lock()  # one block at a time, however Silverback schedules the handlers
acted = {"block": 0}


def sync(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return call(MANIFEST["sync_url"] + path, body)


def contract(name: str) -> Any:
    w3 = chain.provider.web3
    return w3.eth.contract(MANIFEST["addresses"][name], abi=MANIFEST["abis"][name])


@bot.on_startup()
def register(startup_state: Any) -> None:
    sync("/register", {"name": NAME})


@bot.on_(chain.blocks)
def liquidate(block: Any) -> int:
    """A new head: act on the block the run has opened after it (waiting for it if need be)."""
    with turn:
        for _ in range(2):  # a block that closed meanwhile (409): the next one
            step = sync(f"/next?after={acted['block']}")
            if step.get("block") is None:  # the run is over, or no block opened yet
                return 0
            acted["block"] = step["block"]
            vault, w3 = contract("MarginVault"), chain.provider.web3
            nonce = w3.eth.get_transaction_count(ME.address, "pending")
            todo = liquidatable(contract("MarginLens"))
            for fn, target in todo:
                tx = {
                    "to": vault.address,
                    "data": vault.encode_abi(fn, args=[target]),
                    "value": 0,
                    "nonce": nonce,
                    "gas": GAS[fn],
                    "maxPriorityFeePerGas": TIP_WEI,
                    "maxFeePerGas": 4 * max(block.base_fee, step.get("base_fee_wei") or 0)
                    + TIP_WEI,
                    "chainId": MANIFEST["chain_id"],
                }
                w3.eth.send_raw_transaction(ME.sign_transaction(tx).raw_transaction)
                nonce += 1
            try:
                sync("/acted", {"name": NAME, "block": step["block"]})
            except urllib.error.HTTPError as e:
                if e.code == 409:
                    continue
                raise
            return len(todo)
        return 0
