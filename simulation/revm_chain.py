"""An in-process dev chain on revm (pyrevm) that answers the JSON-RPC methods this project sends, with
anvil's semantics where they show in results: the same dev accounts, fee ordering of a block's
transactions (priority fee, then arrival; a sender's nonces in order), EIP-1559 base fees, receipts with
gas used, logs and revert data, automine or explicit mining, block timestamp intervals, snapshots.

It stands where anvil's HTTP endpoint stands: `InProcessRpc` is the engine's transport and
`RevmProvider` web3's, so deployment, agents, metrics and reports do not know which backend runs.
What differs from anvil and does not show in results: transaction and block hashes (a counter hashed,
not a signature), receipts kept for the last RECEIPT_BLOCKS blocks only, no mempool RPCs but
`anvil_dropTransaction`, no forking (a fork runs on anvil)."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak
from pyrevm import EVM, AccountInfo, BlockEnv, CfgEnv, Env
from web3.providers.base import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from simulation.chain import ANVIL_MNEMONIC, GENESIS_TIMESTAMP
from simulation.rpc import RpcError

SPEC = "Cancun"
"""The hardfork the contracts are compiled for (ape-config.yaml `evm_version`); anvil runs it too."""
ELASTICITY, BASE_FEE_CHANGE_DENOMINATOR = 2, 8
INITIAL_BASE_FEE = 1_000_000_000
RECEIPT_BLOCKS = 256
"""Blocks whose receipts (and revert data) are kept: older ones are dropped, so memory stays flat over
long runs (the engine reads only the last block's; anvil keeps them all)."""
_REVERT = re.compile(r"output: (0x[0-9a-fA-F]*)")
_ACCOUNT = ": Account { info: AccountInfo { balance: "
_STORAGE = "storage: {"
_STATUS = "status: AccountStatus("
_SLOT = re.compile(
    r"(\d+): StorageSlot \{ previous_or_original_value: (\d+), present_value: (\d+) \}"
)
_EMPTY_HASH = "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


class RpcFault(Exception):
    """An error answer: JSON-RPC code, message and (for a revert) the revert data."""

    def __init__(self, code: int, message: str, data: str | None = None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def _int(x: Any) -> int:
    return int(x, 16) if isinstance(x, str) else int(x)


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _bytes(x: str | None) -> bytes:
    return bytes.fromhex(x[2:]) if x else b""


def next_base_fee(gas_used: int, gas_limit: int, base_fee: int) -> int:
    """EIP-1559 base fee of the block after one with `gas_used` of `gas_limit` at `base_fee`."""
    target = gas_limit // ELASTICITY
    if gas_used == target:
        return base_fee
    if gas_used > target:
        delta = base_fee * (gas_used - target) // (target * BASE_FEE_CHANGE_DENOMINATOR)
        return base_fee + max(1, delta)
    return base_fee - base_fee * (target - gas_used) // (target * BASE_FEE_CHANGE_DENOMINATOR)


@dataclass
class PendingTx:
    hash: str
    sender: str
    to: str | None
    data: bytes
    gas: int
    max_fee: int
    tip: int
    nonce: int
    value: int
    arrival: int


@dataclass
class Block:
    number: int
    timestamp: int
    base_fee: int
    gas_used: int = 0
    txs: list[str] = field(default_factory=list)
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.hash = _hex(keccak(b"block" + self.number.to_bytes(8, "big")))


@dataclass
class _Snapshot:
    undo: int
    """Length of the undo log when taken."""
    blocks: int
    nonces: dict[str, int]
    pending: list[PendingTx]
    offset: int
    next_timestamp: int | None


ACCOUNTS_FILE = Path(__file__).with_name("anvil_accounts.txt")


def dev_addresses(n: int, table: bool = True) -> list[str]:
    """anvil's first n dev accounts (its standard mnemonic), checksummed: from the table derived once
    (deriving 1,000 here takes 18 s), the rest derived now."""
    known = []
    if table:
        lines = ACCOUNTS_FILE.read_text(encoding="utf8").splitlines()
        known = [x for x in lines if x.startswith("0x")][:n]
    Account.enable_unaudited_hdwallet_features()
    return known + [
        Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").address
        for i in range(len(known), n)
    ]


class RevmChain:
    """One in-process chain. `request(method, params)` answers like anvil or raises RpcFault."""

    def __init__(
        self,
        accounts: int = 10,
        balance_eth: int = 1_000_000,
        chain_id: int = 31337,
        timestamp: int = GENESIS_TIMESTAMP,
        gas_limit: int = 1_000_000_000,
        code_size_limit: int = 49152,
    ):
        self.chain_id, self.gas_limit = chain_id, gas_limit
        cfg = CfgEnv(chain_id=chain_id, limit_contract_code_size=code_size_limit)
        self.evm = EVM(env=Env(cfg=cfg), spec_id=SPEC)  # calls may exceed the block gas limit
        self.accounts = [a.lower() for a in dev_addresses(accounts)]
        self._unlocked = set(self.accounts)
        self._info: dict[str, tuple[int, int, str]] = {}
        """Every account written so far: (balance, nonce, code hash), what the database holds."""
        self._code: dict[str, bytes] = {}
        """Code by hash (0x-hex)."""
        self._undo: list[tuple[str, str, Any]] | None = None
        """Old values of the database writes while a snapshot is open (None otherwise)."""
        for a in self.accounts:
            self._write_info(a, balance_eth * 10**18, 0, _EMPTY_HASH)
        self.blocks = [Block(0, timestamp, INITIAL_BASE_FEE)]
        self.receipts: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, str] = {}
        """Revert data of each reverted transaction (what debug_traceTransaction answers)."""
        self.nonces: dict[str, int] = {}
        self.pending: list[PendingTx] = []
        self.automine = True
        self.interval: int | None = None
        self.offset = 0
        self.next_timestamp: int | None = None
        self.forced_base_fee: int | None = None
        self._arrivals = itertools.count()
        self._tx_ids = itertools.count(1)
        self._snapshots: dict[int, _Snapshot] = {}
        self._snapshot_ids = itertools.count(1)
        self._methods = {
            name.removeprefix("rpc_"): getattr(self, name)
            for name in dir(self)
            if name.startswith("rpc_")
        }
        self._env_block = -1

    # ------------------------------------------------------------------ dispatch

    def request(self, method: str, params: list[Any] | None = None) -> Any:
        fn = self._methods.get(method)
        if fn is None:
            raise RpcFault(
                -32601,
                f"Method not found: {method} (the revm backend answers "
                f"{len(self._methods)} methods; run on anvil for others)",
            )
        return fn(*(params or []))

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _addr(a: str) -> str:
        """Addresses are lowercase inside (pyrevm takes either; checksumming costs 0.1 ms each)."""
        return a.lower()

    def _latest(self) -> Block:
        return self.blocks[-1]

    def _block(self, tag: Any) -> Block:
        if tag in (None, "latest", "pending", "safe", "finalized"):
            return self._latest()
        if tag == "earliest":
            return self.blocks[0]
        n = _int(tag)
        if n >= len(self.blocks):
            raise RpcFault(-32000, f"block {n} not found")
        return self.blocks[n]

    def _set_env(self, block: Block) -> None:
        if self._env_block != block.number:
            self.evm.set_block_env(BlockEnv(number=block.number, timestamp=block.timestamp))
            self._env_block = block.number

    def _nonce(self, a: str) -> int:
        return self.nonces.get(a, 0)

    def _execute(
        self, tx: PendingTx, gas_price: int
    ) -> tuple[bool, int, list[Any], str, str | None]:
        """Run one transaction on the current block env: (ok, gas used, logs, revert data, created).

        pyrevm keeps every account and slot a call touched in its journal, warm, with its original
        value, for all later calls: gas would drift from a real chain's after the first transaction. So
        each transaction runs on an empty journal (a checkpoint), its effects are read off the journal,
        the checkpoint is reverted, and the effects are written into the database underneath: the next
        transaction starts cold, as on anvil."""
        evm, created = self.evm, None
        cp = evm.snapshot()
        try:
            if tx.to is None:
                created = evm.deploy(tx.sender, tx.data, tx.value, tx.gas)
            else:
                evm.message_call(tx.sender, tx.to, tx.data, tx.value, tx.gas, gas_price)
            ok, out = True, "0x"
        except RuntimeError as e:
            ok, m = False, _REVERT.search(str(e))
            out = m.group(1) if m else "0x"
            if evm.result is None:  # refused before execution (nonce, funds, code size)
                evm.revert(cp)
                raise RpcFault(-32003, f"transaction refused: {e}") from e
        result = evm.result
        assert result is not None  # set by every call that executed
        gas, logs = result.gas_used, (list(result.logs) if ok else [])
        changes = self._changes(evm.journal_str) if ok else []
        evm.revert(cp)
        evm.reset_transient_storage()
        for addr, balance, nonce, code_hash, slots in changes:
            self._write_info(addr, balance, nonce, code_hash)
            for key, old, new in slots:
                self._write_slot(addr, key, new, old)
        return ok, gas, logs, out, created

    def _changes(self, journal: str) -> list[tuple[str, int, int, str, list[tuple[int, int, int]]]]:
        """Accounts the transaction touched, from pyrevm's journal (its Debug text: the only view of
        it pyrevm gives): (address, balance, nonce, code hash, [(slot, old, new)] of changed slots).
        New code is read now, before the checkpoint is reverted."""
        out = []
        parts = journal.split(_ACCOUNT)
        for prev, chunk in itertools.pairwise(parts):
            addr = prev[-42:]
            balance, rest = chunk.split(", nonce: ", 1)
            nonce, rest = rest.split(", code_hash: ", 1)
            code_hash = rest[:66]
            start = chunk.find(_STORAGE)
            end = chunk.find(_STATUS, start)
            status = chunk[end + len(_STATUS) : chunk.find(")", end)]
            if "Touched" not in status and "Created" not in status:
                continue
            slots = [
                (int(k), int(old), int(new))
                for k, old, new in _SLOT.findall(chunk, start, end)
                if old != new
            ]
            if code_hash not in self._code and code_hash != _EMPTY_HASH:
                self._code[code_hash] = bytes(self.evm.get_code(addr) or b"")
            out.append((addr, int(balance), int(nonce), code_hash, slots))
        return out

    def _write_info(self, addr: str, balance: int, nonce: int, code_hash: str) -> None:
        old = self._info.get(addr, (0, 0, _EMPTY_HASH))
        if old == (balance, nonce, code_hash):
            return
        if self._undo is not None:
            self._undo.append(("info", addr, old))
        self._info[addr] = (balance, nonce, code_hash)
        code = self._code.get(code_hash)
        # pyrevm's stub omits AccountInfo's first parameter, balance (its Rust signature has it)
        info = AccountInfo(balance, nonce, None, code)  # type: ignore[call-arg, arg-type]
        self.evm.insert_account_info(addr, info)

    def _write_slot(self, addr: str, key: int, value: int, old: int | None = None) -> None:
        """Write a slot into the database underneath the journal (pyrevm loads the account into the
        journal after the write: a checkpoint around it unloads it again, the write stays)."""
        if self._undo is not None:
            self._undo.append(("slot", addr, (key, self._peek(addr, key) if old is None else old)))
        cp = self.evm.snapshot()
        self.evm.insert_account_storage(addr, key, value)
        self.evm.revert(cp)

    def _peek(self, addr: str, key: int) -> int:
        cp = self.evm.snapshot()
        try:
            return int(self.evm.storage(addr, key))
        finally:
            self.evm.revert(cp)

    # ------------------------------------------------------------------ mining

    def _ordered(self) -> Iterable[PendingTx]:
        """The block's transactions in anvil's order (`--order fees`): the highest max fee first among
        those whose nonce is next for their sender, ties by arrival; a sender's next nonce becomes
        eligible once the one before it is taken. Transactions behind a nonce gap stay pending. As
        anvil (1.7) does, a transaction priced above the one before it from the same sender is
        dropped, with every later one of that sender (measured: tests/test_backends.py)."""
        by_sender: dict[str, dict[int, PendingTx]] = {}
        for tx in self.pending:
            by_sender.setdefault(tx.sender, {})[tx.nonce] = tx
        chains: dict[str, list[PendingTx]] = {}
        dropped: set[int] = set()
        for sender, txs in by_sender.items():
            chain: list[PendingTx] = []
            nonce = self._nonce(sender)
            while nonce in txs:
                tx = txs[nonce]
                if chain and tx.max_fee > chain[-1].max_fee:
                    dropped.update(id(t) for n, t in txs.items() if n >= nonce)
                    break
                chain.append(tx)
                nonce += 1
            if chain:
                chains[sender] = chain
        if dropped:
            self.pending = [t for t in self.pending if id(t) not in dropped]
        ready = [chain[0] for chain in chains.values()]
        while ready:
            best = max(ready, key=lambda t: (t.max_fee, -t.arrival))
            ready.remove(best)
            yield best
            chain = chains[best.sender]
            k = best.nonce - chain[0].nonce + 1
            if k < len(chain):
                ready.append(chain[k])

    def _next_ts(self) -> int:
        if self.next_timestamp is not None:
            ts, self.next_timestamp = self.next_timestamp, None
            return ts
        last = self._latest().timestamp
        if self.interval is not None:
            return last + self.interval
        return max(last + 1, int(time.time()) + self.offset)

    def _next_base_fee(self) -> int:
        """The next block's base fee: the one set for it (anvil_setNextBlockBaseFeePerGas), else
        EIP-1559's from the latest block (the first block after genesis keeps genesis's)."""
        if self.forced_base_fee is not None:
            return self.forced_base_fee
        latest = self._latest()
        if latest.number == 0:
            return latest.base_fee
        return next_base_fee(latest.gas_used, self.gas_limit, latest.base_fee)

    def mine(self, timestamp: int | None = None) -> Block:
        parent = self._latest()
        base_fee, self.forced_base_fee = self._next_base_fee(), None
        ts = self._next_ts() if timestamp is None else timestamp
        block = Block(parent.number + 1, ts, base_fee)
        self.blocks.append(block)
        self._set_env(block)
        taken = []
        for tx in list(self._ordered()):
            if tx.max_fee < base_fee:
                continue
            taken.append(tx)
            self._include(block, tx, min(tx.max_fee, base_fee + tx.tip))
        done = {id(t) for t in taken}
        self.pending = [t for t in self.pending if id(t) not in done]
        if block.number > RECEIPT_BLOCKS:
            old = self.blocks[block.number - RECEIPT_BLOCKS]
            for h in old.txs:
                self.receipts.pop(h, None)
                self.outputs.pop(h, None)
            old.txs = []  # its header stays (number, timestamp, base fee, gas used)
        return block

    def _include(self, block: Block, tx: PendingTx, price: int) -> None:
        ok, gas, logs, out, created = self._execute(tx, price)
        self.nonces[tx.sender] = tx.nonce + 1
        balance, _, code_hash = self._info.get(tx.sender, (0, 0, _EMPTY_HASH))
        self._write_info(tx.sender, balance - gas * price, tx.nonce + 1, code_hash)
        index = len(block.txs)
        first_log = sum(len(self.receipts[h]["logs"]) for h in block.txs)
        block.gas_used += gas
        block.txs.append(tx.hash)
        self.receipts[tx.hash] = {
            "transactionHash": tx.hash,
            "transactionIndex": hex(index),
            "blockHash": block.hash,
            "blockNumber": hex(block.number),
            "from": tx.sender.lower(),
            "to": tx.to.lower() if tx.to else None,
            "cumulativeGasUsed": hex(block.gas_used),
            "gasUsed": hex(gas),
            "effectiveGasPrice": hex(price),
            "contractAddress": created.lower() if created else None,
            "logs": [
                {
                    "address": log.address.lower(),
                    "topics": list(log.topics),
                    "data": _hex(log.data[1]),
                    "blockHash": block.hash,
                    "blockNumber": hex(block.number),
                    "transactionHash": tx.hash,
                    "transactionIndex": hex(index),
                    "logIndex": hex(first_log + i),
                    "removed": False,
                }
                for i, log in enumerate(logs)
            ],
            "logsBloom": "0x" + "00" * 256,
            "status": "0x1" if ok else "0x0",
            "type": "0x2",
        }
        if not ok:
            self.outputs[tx.hash] = out

    # ------------------------------------------------------------------ eth_

    def rpc_eth_chainId(self) -> str:
        return hex(self.chain_id)

    def rpc_net_version(self) -> str:
        return str(self.chain_id)

    def rpc_web3_clientVersion(self) -> str:
        return f"marginsim-revm/{SPEC}"

    def rpc_eth_accounts(self) -> list[str]:
        return list(self.accounts)

    def rpc_eth_blockNumber(self) -> str:
        return hex(self._latest().number)

    def rpc_eth_gasPrice(self) -> str:
        return hex(
            next_base_fee(self._latest().gas_used, self.gas_limit, self._latest().base_fee) + 10**9
        )

    def rpc_eth_maxPriorityFeePerGas(self) -> str:
        return hex(10**9)

    def rpc_eth_getBlockByNumber(self, tag: Any, full: bool = False) -> dict[str, Any]:
        b = self._block(tag)
        return {
            "number": hex(b.number),
            "hash": b.hash,
            "parentHash": self.blocks[b.number - 1].hash if b.number else "0x" + "00" * 32,
            "timestamp": hex(b.timestamp),
            "baseFeePerGas": hex(b.base_fee),
            "gasLimit": hex(self.gas_limit),
            "gasUsed": hex(b.gas_used),
            "miner": "0x" + "00" * 20,
            "transactions": list(b.txs),
        }

    def rpc_eth_getTransactionCount(self, a: str, tag: Any = "latest") -> str:
        a = self._addr(a)
        n = self._nonce(a)
        if tag == "pending":
            queued = sorted(t.nonce for t in self.pending if t.sender == a)
            for q in queued:
                if q == n:
                    n += 1
        return hex(n)

    def _account(self, a: str) -> tuple[int, int, str]:
        return self._info.get(self._addr(a), (0, 0, _EMPTY_HASH))

    def rpc_eth_getBalance(self, a: str, tag: Any = "latest") -> str:
        return hex(self._account(a)[0])

    def rpc_eth_getCode(self, a: str, tag: Any = "latest") -> str:
        return _hex(self._code.get(self._account(a)[2], b""))

    def rpc_eth_getStorageAt(self, a: str, slot: Any, tag: Any = "latest") -> str:
        return "0x" + self._peek(self._addr(a), _int(slot)).to_bytes(32, "big").hex()

    def rpc_eth_call(self, call: dict[str, Any], tag: Any = "latest", *_: Any) -> str:
        block = self._block(tag)
        if block is not self._latest():
            raise RpcFault(-32000, "the revm backend calls at the latest block only")
        self._set_env(block)
        sender = self._addr(call.get("from") or "0x" + "00" * 20)
        data = _bytes(call.get("data") or call.get("input"))
        gas = _int(call["gas"]) if call.get("gas") else self.gas_limit
        cp = self.evm.snapshot()
        try:
            if call.get("to") is None:
                self.evm.deploy(sender, data, _int(call.get("value", 0)), gas)
                return "0x"
            out = self.evm.message_call(
                sender, self._addr(call["to"]), data, _int(call.get("value", 0)), gas
            )
            return _hex(bytes(out))
        except RuntimeError as e:
            m = _REVERT.search(str(e))
            if m is None:
                raise RpcFault(-32003, f"execution failed: {str(e)[:200]}") from e
            raise RpcFault(3, "execution reverted", m.group(1)) from e
        finally:
            self.evm.revert(cp)

    def rpc_eth_estimateGas(self, call: dict[str, Any], tag: Any = "latest", *_: Any) -> str:
        """The gas the call uses with a generous limit, plus anvil-like headroom is web3's business."""
        self._set_env(self._latest())
        sender = self._addr(call.get("from") or "0x" + "00" * 20)
        data = _bytes(call.get("data") or call.get("input"))
        cp = self.evm.snapshot()
        try:
            if call.get("to") is None:
                self.evm.deploy(sender, data, _int(call.get("value", 0)), 30_000_000)
            else:
                self.evm.message_call(
                    sender, self._addr(call["to"]), data, _int(call.get("value", 0)), 30_000_000
                )
            result = self.evm.result
            assert result is not None
            return hex(result.gas_used)
        except RuntimeError as e:
            m = _REVERT.search(str(e))
            raise RpcFault(3, "execution reverted", m.group(1) if m else None) from e
        finally:
            self.evm.revert(cp)

    def rpc_eth_sendTransaction(self, tx: dict[str, Any]) -> str:
        sender = self._addr(tx["from"])
        if sender not in self._unlocked:
            raise RpcFault(-32000, f"no such unlocked account {sender}")
        nonce = (
            _int(tx["nonce"])
            if "nonce" in tx
            else _int(self.rpc_eth_getTransactionCount(sender, "pending"))
        )
        if nonce < self._nonce(sender):
            raise RpcFault(-32003, f"nonce too low: {nonce} < {self._nonce(sender)}")
        base = self._next_base_fee()
        if "maxFeePerGas" in tx:
            max_fee, tip = _int(tx["maxFeePerGas"]), _int(tx.get("maxPriorityFeePerGas", 0))
        elif "gasPrice" in tx:
            max_fee = tip = _int(tx["gasPrice"])
        else:
            tip = 10**9
            max_fee = 2 * base + tip
        gas = _int(tx["gas"]) if "gas" in tx else _int(self.rpc_eth_estimateGas(tx)) * 13 // 10
        if gas > self.gas_limit:
            raise RpcFault(-32003, "intrinsic gas too high: above the block gas limit")
        value = _int(tx.get("value", 0))
        if self._account(sender)[0] < gas * max_fee + value:
            raise RpcFault(-32003, "insufficient funds for gas * price + value")
        h = f"0x{next(self._tx_ids):064x}"  # unique, and no hash to compute: nothing reads it
        pending = PendingTx(
            h,
            sender,
            self._addr(tx["to"]) if tx.get("to") else None,
            _bytes(tx.get("data") or tx.get("input")),
            gas,
            max_fee,
            min(tip, max_fee),
            nonce,
            value,
            next(self._arrivals),
        )
        self.pending.append(pending)
        if self.automine:
            self.mine()
        return h

    def rpc_eth_getTransactionReceipt(self, h: str) -> dict[str, Any] | None:
        return self.receipts.get(h)

    def rpc_debug_traceTransaction(
        self, h: str, opts: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        r = self.receipts.get(h)
        if r is None:
            raise RpcFault(-32000, f"transaction {h} not found")
        ok = r["status"] == "0x1"
        trace = {"from": r["from"], "to": r["to"], "gasUsed": r["gasUsed"], "type": "CALL"}
        if not ok:
            trace.update(output=self.outputs.get(h, "0x"), error="execution reverted")
        return trace

    # ------------------------------------------------------------------ evm_ / anvil_

    def rpc_evm_mine(self, timestamp: Any = None) -> str:
        if isinstance(timestamp, dict):
            timestamp = timestamp.get("timestamp")
        self.mine(None if timestamp is None else _int(timestamp))
        return "0x0"

    def rpc_anvil_mine(self, blocks: Any = 1, interval: Any = None) -> None:
        for _ in range(_int(blocks)):
            self.mine()

    def rpc_evm_setAutomine(self, on: bool) -> bool:
        self.automine = bool(on)
        return True

    def rpc_evm_increaseTime(self, seconds: Any) -> str:
        self.offset += _int(seconds)
        if self.next_timestamp is None:
            self.next_timestamp = self._latest().timestamp + _int(seconds)
        else:
            self.next_timestamp += _int(seconds)
        return hex(self.offset)

    def rpc_evm_setNextBlockTimestamp(self, ts: Any) -> None:
        self.next_timestamp = _int(ts)

    def rpc_anvil_setBlockTimestampInterval(self, seconds: Any) -> None:
        self.interval = _int(seconds)

    def rpc_anvil_removeBlockTimestampInterval(self) -> bool:
        self.interval = None
        return True

    def rpc_anvil_setNextBlockBaseFeePerGas(self, wei: Any) -> None:
        self.forced_base_fee = _int(wei)

    def rpc_anvil_setBalance(self, a: str, wei: Any) -> None:
        _, nonce, code_hash = self._account(a)
        self._write_info(self._addr(a), _int(wei), nonce, code_hash)

    def rpc_anvil_setCode(self, a: str, code: str) -> None:
        balance, nonce, _ = self._account(a)
        raw = _bytes(code)
        code_hash = _hex(keccak(raw)) if raw else _EMPTY_HASH
        self._code.setdefault(code_hash, raw)
        self._write_info(self._addr(a), balance, nonce, code_hash)

    def rpc_anvil_setStorageAt(self, a: str, slot: Any, value: Any) -> bool:
        self._write_slot(self._addr(a), _int(slot), _int(value))
        return True

    def rpc_anvil_dropTransaction(self, h: str) -> str | None:
        before = len(self.pending)
        self.pending = [t for t in self.pending if t.hash != h]
        return h if len(self.pending) < before else None

    def rpc_evm_snapshot(self) -> str:
        sid = next(self._snapshot_ids)
        if self._undo is None:
            self._undo = []
        self._snapshots[sid] = _Snapshot(
            len(self._undo),
            len(self.blocks),
            dict(self.nonces),
            list(self.pending),
            self.offset,
            self.next_timestamp,
        )
        return hex(sid)

    def rpc_evm_revert(self, sid: Any) -> bool:
        snap = self._snapshots.pop(_int(sid), None)
        if snap is None or self._undo is None:
            return False
        for later in [k for k in self._snapshots if k > _int(sid)]:
            del self._snapshots[later]
        log, self._undo = self._undo, None  # undoing writes logs nothing
        for kind, addr, old in reversed(log[snap.undo :]):
            if kind == "info":
                self._write_info(addr, *old)
            else:
                self._write_slot(addr, old[0], old[1], 0)
        self._undo = log[: snap.undo] if self._snapshots else None
        for h in (h for b in self.blocks[snap.blocks :] for h in b.txs):
            self.receipts.pop(h, None)
            self.outputs.pop(h, None)
        del self.blocks[snap.blocks :]
        self.nonces, self.pending = snap.nonces, snap.pending
        self.offset, self.next_timestamp = snap.offset, snap.next_timestamp
        self._env_block = -1
        return True


class InProcessRpc:
    """The engine's transport to a RevmChain: the same surface as simulation.rpc.Rpc."""

    def __init__(self, chain: RevmChain):
        self.chain = chain
        self.url = "revm://in-process"
        self.round_trips = 0

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        self.round_trips += 1
        try:
            return self.chain.request(method, params)
        except RpcFault as e:
            raise RuntimeError(f"{method} failed: {e.message}") from e

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        if not calls:
            return []
        self.round_trips += 1
        out: list[Any] = []
        for method, params in calls:
            try:
                out.append(self.chain.request(method, params))
            except RpcFault as e:
                out.append(RpcError(e.code, e.message, e.data))
        return out

    def close(self) -> None:
        pass


class RevmProvider(BaseProvider):
    """web3's provider for a RevmChain (deployment and set-up talk to it as to anvil)."""

    def __init__(self, chain: RevmChain):
        super().__init__()
        self.chain = chain
        self._ids = itertools.count(1)

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        rid = next(self._ids)
        try:
            return {"jsonrpc": "2.0", "id": rid, "result": self.chain.request(method, list(params))}
        except RpcFault as e:
            error: dict[str, Any] = {"code": e.code, "message": e.message}
            if e.data is not None:
                error["data"] = e.data
            return {"jsonrpc": "2.0", "id": rid, "error": error}  # type: ignore[typeddict-item]

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True
