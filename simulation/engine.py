"""The block loop: price step -> agents decide on the last snapshot -> one batch of transactions -> one
block mined at an explicit timestamp -> receipts and events folded into metrics -> next snapshot.

Three JSON-RPC round trips per block (send batch, mine, receipts + snapshot batch), plus one more
every `invariants_every` blocks and one for revert reasons in a block where something reverted.
Nothing here goes through ape."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from simulation import funding
from simulation.abi import ContractAbi, EventDecoder
from simulation.adversary_pnl import holdings_usd, oracle_price_wad, pnl_usd
from simulation.agents.adversaries import Manipulator
from simulation.agents.base import Agent, Observation, Tx
from simulation.agents.build import (
    SYMBOL_TOKEN,
    Build,
    ForkContext,
    build_agents,
    encoder,
    read_protocol,
)
from simulation.deploy import Deployment
from simulation.depth import Cascade, Depth, block_flows
from simulation.errors import ErrorDecoder
from simulation.external import EXTERNAL_FUNDING, Lockstep, OutsideTxs
from simulation.invariants import check_invariants
from simulation.metrics import (
    Counters,
    KeeperCards,
    KeeperStats,
    Races,
    Recorder,
    block_row,
    count_revert,
    fold_receipts,
    mark_pnl,
    underwater_targets,
)
from simulation.rpc import ChainDown, Rpc, RpcError
from simulation.scenario import Scenario
from simulation.state import Addresses, ChainReader, Snapshot
from simulation.units import GWEI

LIQUIDATED_LEGS = frozenset({"IsolatedLiquidated", "CrossPositionLiquidated"})


def _block_position(pair: tuple[Tx, Any]) -> int:
    """Where a transaction sits in its block (one never mined: after all)."""
    r = pair[1]
    return int(r["transactionIndex"], 16) if isinstance(r, dict) else 1 << 62


def fee_ordered_per_sender(txs: list[Tx]) -> list[Tx]:
    """`txs` with each sender's own transactions in descending fee order (stable), in the places its
    transactions held: nonces follow list order, and anvil drops a transaction priced above its
    sender's previous one, with all that sender's later ones (simulation.revm_chain._ordered). The
    block orders by fee anyway; the built-in agents already bid this way (nothing moves for them)."""
    places: dict[str, list[int]] = {}
    for i, tx in enumerate(txs):
        places.setdefault(tx.sender, []).append(i)
    out = list(txs)
    for at in places.values():
        mine = sorted((txs[i] for i in at), key=lambda t: -t.priority_fee_wei)
        for i, tx in zip(at, mine, strict=True):
            out[i] = tx
    return out


class Engine:
    def __init__(
        self,
        scenario: Scenario,
        rpc: Rpc,
        deployment: Deployment,
        accounts: Sequence[str],
        prices: dict[str, np.ndarray],
        recorder: Recorder,
        fork: ForkContext | None = None,
        lockstep: Lockstep | None = None,
    ):
        """`lockstep`: outside bots acting in step with the blocks (simulation.external)."""
        self.sc, self.rpc, self.d, self.rec = scenario, rpc, deployment, recorder
        self.lockstep = lockstep
        self.external = dict(lockstep.bots) if lockstep else {}
        """Outside bot name -> its address."""
        self.prices, self.fork = prices, fork
        self.abis = {k: ContractAbi(v) for k, v in deployment.abis.items()}
        self.token_kind = deployment.kinds["USDC"]
        feed_token = dict(SYMBOL_TOKEN)
        if fork is not None and fork.quote_symbol in fork.feeds:
            feed_token[fork.quote_symbol] = fork.quote_symbol
        if fork is None and "FEED_USDC" in deployment.addresses:  # a local quote feed (a depeg)
            feed_token["USDC"] = "USDC"
        self.feed_token = feed_token
        self.decoder = EventDecoder(deployment.abis.values())
        self.errors = ErrorDecoder(deployment.abis.values())
        a = deployment.addresses
        self.addr = Addresses(
            a["MarginVault"],
            a["MarginLens"],
            a["LPPool"],
            a["InsuranceFund"],
            a["USDC"],
            {s: a[f"FEED_{t}"] for s, t in feed_token.items()},
        )
        self.market_ids = dict(deployment.markets)
        markets = {i: (name, name.split("-")[0]) for name, i in self.market_ids.items()}
        self.reader = ChainReader(
            rpc, self.addr, self.abis, markets, self.token_kind, deployment.kinds["FEED_WETH"]
        )
        self.protocol = read_protocol(self.reader, deployment, self.abis, self.market_ids)
        self.reader.quote_at_feed = self.protocol.quote_at_feed
        build = Build(
            scenario,
            deployment,
            self.abis,
            self.addr,
            self.market_ids,
            self.reader,
            self.protocol,
            fork,
        )
        self.agents = build_agents(build, accounts)
        self.encoder = encoder(deployment, self.abis, self.addr)
        # a keeper that reverts within this many blocks of another's liquidation lost the race
        self.races = Races(1 + max((k.latency_blocks for k in self.agents.keepers), default=0))
        keepers = [k.name for k in self.agents.keepers] + list(self.external)
        self.counters = Counters(keepers={name: KeeperStats() for name in keepers})
        self.cards = KeeperCards(keepers, self.races.window)
        self.outside = OutsideTxs(self.external, self.abis) if lockstep else None
        self.own_senders = {a.lower() for a in accounts}
        """Addresses of the run's own agents: their transactions are folded from their own sends."""
        self.market_symbol = {i: sym for i, (_, sym) in markets.items()}
        depth = scenario.market.depth
        self.depth = Depth(depth, scenario.block_time_s) if depth is not None else None
        """Liquidations (and optionally traders) move the market (simulation.depth); None: they do not."""
        self.cascade = Cascade()
        self.history: list[dict[str, float]] = [self._price(0)]
        self.nonces = funding.Nonces(rpc.batch)
        self.blocks_done = 0
        self.adv_gas_usd: dict[str, float] = {a.name: 0.0 for a in self.agents.adversaries}
        """Gas each adversary paid so far (all its addresses), USD at the ETH round of each block."""
        self.start: Snapshot | None = None
        self.adv_start_usd: dict[str, float] = {}
        """What each adversary held after set-up, USD (its PnL is measured against it)."""
        self.last: Snapshot | None = None

    # ------------------------------------------------------------------ set-up

    def _price(self, block: int) -> dict[str, float]:
        """Block `block`'s market prices: the path's, times the impact of the flows so far."""
        base = {s: float(p[block]) for s, p in self.prices.items()}
        return self.depth.price(base) if self.depth is not None else base

    def _counterfactual(self, before: Snapshot) -> Callable[[int, int], float]:
        """For a liquidation of the block just mined that used oracle price `price_wad` in a market: the
        factor taking it to the price without liquidation impact, exp(-impact) as of the oracle round
        that set it (the round after the block, or the one before it)."""
        assert self.depth is not None and self.last is not None
        depth, after, t0, bt = self.depth, self.last, self.t0, self.sc.block_time_s

        def factor(market_id: int, price_wad: int) -> float:
            symbol = self.market_symbol[market_id]
            snap = after if after.market(market_id).price_wad == price_wad else before
            round_ = snap.oracle_rounds.get(symbol)
            if round_ is None:
                return 1.0
            return float(np.exp(-depth.liq_at((round_[1] - t0) // bt, symbol)))

        return factor

    def fund(self) -> None:
        """Wallets, approvals and the LPs' deposits (simulation.funding), then the first snapshot."""
        funding.fund(
            self.rpc,
            self.nonces,
            self.d,
            self.abis,
            self.token_kind,
            self.agents,
            self.fork,
            self.protocol.deposit_cooldown_s,
        )
        if self.external:
            funding.fund_external(
                self.rpc,
                self.nonces,
                self.d,
                self.abis[self.token_kind],
                EXTERNAL_FUNDING,
                self.external,
                {a.lower() for a in self.rpc.call("eth_accounts", [])},
            )
        self.start = self.last = self.reader.snapshot()
        self.adv_start_usd = {
            adv.name: holdings_usd(self.start, adv.addresses) for adv in self.agents.adversaries
        }
        self.t0 = self.start.timestamp_s

    # ------------------------------------------------------------------ the loop

    def step(self, block: int) -> None:
        assert self.last is not None
        snap = self.last
        self.history.append(self._price(block))
        timestamp = self.t0 + block * self.sc.block_time_s
        forced = next((w.gwei for w in self.sc.base_fee if w.contains(block)), None)
        if self.lockstep is not None:  # the outside bots act on the same state, meanwhile
            self.lockstep.open_block(
                block, timestamp, int(forced * GWEI) if forced is not None else None
            )
        txs: list[Tx] = []
        outside: dict[str, float] = {}
        for agent in self.agents.in_order():
            txs += self._decide(agent, block, timestamp, snap)
            if isinstance(agent, Manipulator):
                outside = self._trade_outside(block, agent, outside)
        # Equal fees would be ordered by arrival, which a concurrent batch does not fix: break ties by the
        # (seeded, fixed) decision order with a few wei, so the block's order is a function of the seed.
        txs = fee_ordered_per_sender(
            [
                replace(tx, priority_fee_wei=tx.priority_fee_wei + len(txs) - i)
                for i, tx in enumerate(txs)
            ]
        )
        if self.lockstep is not None:
            for name in self.lockstep.wait_acted(block):
                self.counters.keepers[name].missed_blocks += 1
                self.rec.event(block, "ExternalMissed", agent=name)
        cheats, rounds = self.agents.oracle.take_cheats()  # fork feeds: written before the block
        self.counters.oracle_rounds += rounds
        base_fee = snap.base_fee_wei
        if forced is not None:  # a gas spike: this block's base fee is set, and the fees cover it
            base_fee = max(base_fee, int(forced * GWEI))
            cheats = [*cheats, ("anvil_setNextBlockBaseFeePerGas", [hex(int(forced * GWEI))])]
        hashes = self._send(txs, base_fee, cheats)
        self.rpc.call("evm_mine", [timestamp])
        sent = [(tx, h) for tx, h in zip(txs, hashes, strict=True) if isinstance(h, str)]
        # Receipts and the next snapshot in one request: both read the block just mined.
        # With outside bots, the block and all its receipts too: theirs come in the same request.
        tail = (
            [("eth_getBlockByNumber", ["latest", True]), ("eth_getBlockReceipts", ["latest"])]
            if self.outside
            else []
        )
        answers = self.rpc.batch(
            [("eth_getTransactionReceipt", [h]) for _, h in sent]
            + self.reader.snapshot_calls()
            + tail
        )
        receipts = list(zip([tx for tx, _ in sent], answers[: len(sent)], strict=True))
        if self.outside is not None:
            outside_receipts = self._outside_receipts(*answers[-2:])
            answers = answers[:-2]
            if outside_receipts:  # everyone's, in block order (the unmined last)
                receipts = sorted(receipts + outside_receipts, key=_block_position)

        def decode(log: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
            decoded = self.decoder.decode(log)
            if decoded is None or decoded[0] not in LIQUIDATED_LEGS:
                return decoded
            return decoded[0], mark_pnl(decoded[0], decoded[1], snap)

        stats, events, reverted = fold_receipts(
            self.counters,
            block,
            receipts,
            decode,
            self.races,
            self.adv_gas_usd,
            oracle_price_wad(snap, "ETH"),
        )
        self.cards.fold(block, receipts, events)
        for who, name, args in events:
            self.rec.event(block, name, agent=who, **args)
        self._revert_reasons(block, reverted)
        self.last = self.reader.parse(answers[len(sent) :])
        if self.depth is not None:
            liq_flow, trade_flow = block_flows(events, snap, self.market_symbol)
            stats["induced_liquidations"] = self.cascade.fold(
                events, snap, self._counterfactual(snap)
            )
            self.depth.absorb(liq_flow, trade_flow, outside)
        self._seen.append(self.last)
        underwater = underwater_targets(self.last)
        self.cards.after(block, underwater)
        row = block_row(self.last, self.history[-1], self.counters, stats, underwater)
        if self.depth is not None:
            for symbol, price in self.prices.items():
                row[f"base_price_{symbol}"] = float(price[block])
            for symbol, impact in self.depth.liq_by_block[block].items():
                row[f"liq_impact_pct_{symbol}"] = float(np.expm1(impact) * 100)
            row["induced_liquidations"] = stats["induced_liquidations"]
        for name, pnl in self.adversary_pnl().items():
            row[f"adv_{name}_pnl_usd"] = pnl
        self.rec.row(row)
        # The block is mined and its row written: it counts as done even if the chain dies during
        # the invariant check below, so the summary's block count always equals the rows written.
        self.blocks_done = block
        if block % self.sc.invariants_every == 0:
            for check, detail in check_invariants(
                self.rpc, self.reader, self.d.addresses, self.last, self.abis
            ):
                self.counters.invariant_violations += 1
                self.rec.event(block, "InvariantViolation", check=check, detail=detail)
            self.counters.invariant_blocks += 1

    def _outside_receipts(self, mined: Any, block_receipts: Any) -> list[tuple[Tx, Any]]:
        """The mined block's transactions from senders outside the run (the external bots, anyone
        else), with their receipts (from the block's, read in the same request), in block order."""
        assert self.outside is not None
        if not isinstance(mined, dict) or not isinstance(block_receipts, list):
            raise ChainDown(f"the mined block could not be read: {mined} / {block_receipts}")
        by_hash = {r["transactionHash"]: r for r in block_receipts}
        return [
            (self.outside.tx(t), by_hash.get(t["hash"]))
            for t in mined.get("transactions", [])
            if str(t["from"]).lower() not in self.own_senders
        ]

    def _decide(self, agent: Agent, block: int, timestamp: int, snap: Snapshot) -> list[Tx]:
        """What `agent` sends in `block`: its actions, encoded."""
        lag = agent.latency_blocks
        seen = self._seen[max(0, len(self._seen) - 1 - lag)] if lag else snap
        obs = Observation(block, timestamp, snap, seen, self.history)
        return [self.encoder.tx(agent.name, agent.address, a) for a in agent.decide(obs)]

    def _trade_outside(
        self, block: int, adv: Manipulator, flows: dict[str, float]
    ) -> dict[str, float]:
        """A manipulator's order on the outside venue this block: filled at the price after its own
        impact, and added to the block's outside flows (which move the next blocks' price)."""
        assert self.depth is not None  # the scenario requires a depth for a manipulator's asset
        price = self.history[-1][adv.asset]
        usd = adv.outside_order(block, price)
        if usd == 0:
            return flows
        units = usd / price
        fill = self.depth.fill_price(price, adv.asset, usd)
        adv.filled(units, units * fill)
        self.rec.event(
            block, "OutsideTrade", agent=adv.name, asset=adv.asset, units=units, price=fill
        )
        return {**flows, adv.asset: flows.get(adv.asset, 0.0) + usd}

    def adversary_pnl(self) -> dict[str, float]:
        """Each adversary's PnL now (all its addresses, after gas; a manipulator's outside cash and
        inventory at the market price too), USD."""
        assert self.start is not None and self.last is not None
        out = {}
        for adv in self.agents.adversaries:
            pnl = pnl_usd(
                self.adv_start_usd[adv.name], self.last, adv.addresses, self.adv_gas_usd[adv.name]
            )
            if isinstance(adv, Manipulator):
                pnl += adv.outside_value_usd(self.history[-1][adv.asset])
            out[adv.name] = pnl
        return out

    def run(self, blocks: int, on_block: Callable[[int], None] | None = None) -> None:
        assert self.last is not None, "fund() first"
        everyone = [self.d.deployer] + [t.address for t in self.agents.traders]
        everyone += [k.address for k in self.agents.keepers] + [
            lp.address for lp in self.agents.lps
        ]
        everyone += [w for adv in self.agents.adversaries for w in adv.addresses]
        everyone += [a.address for a in self.agents.plugins]
        self.nonces.sync(everyone)
        self.rpc.round_trips = 0  # count the loop's round trips, not the set-up's polling
        self._seen: deque[Snapshot] = deque([self.last], maxlen=101)
        for block in range(1, blocks + 1):
            self.step(block)
            if on_block:
                on_block(block)
            if block % 100 == 0:
                self.rec.flush()

    def _send(
        self, txs: list[Tx], base_fee: int, cheats: Sequence[tuple[str, list[Any]]] = ()
    ) -> list[Any]:
        """One batch of eth_sendTransaction with explicit nonces, gas and fees (no estimation).
        `cheats` (state writes) ride in front, in the same request: the transactions only run at
        the next evm_mine, so they all see the writes."""
        calls: list[tuple[str, list[Any]]] = list(cheats)
        for tx in txs:
            max_fee = 2 * base_fee + tx.priority_fee_wei + GWEI
            calls.append(
                (
                    "eth_sendTransaction",
                    [
                        {
                            "from": tx.sender,
                            "to": tx.to,
                            "data": tx.data,
                            "gas": hex(tx.gas),
                            "maxPriorityFeePerGas": hex(tx.priority_fee_wei),
                            "maxFeePerGas": hex(max_fee),
                            "nonce": hex(self.nonces.take(tx.sender)),
                        }
                    ],
                )
            )
        answers = self.rpc.batch(calls)
        failed = [x for x in answers[: len(cheats)] if isinstance(x, RpcError)]
        if failed:
            raise RuntimeError(f"a feed write was refused: {failed[0].message}")
        answers = answers[len(cheats) :]
        refused = {tx.sender for tx, h in zip(txs, answers, strict=True) if isinstance(h, RpcError)}
        if refused:
            # A refused send leaves a nonce gap: drop what queued behind it and resync those senders.
            drops = [
                ("anvil_dropTransaction", [h])
                for tx, h in zip(txs, answers, strict=True)
                if tx.sender in refused and isinstance(h, str)
            ]
            self.rpc.batch(drops)
            answers = [
                RpcError(0, "dropped after a refused send")
                if tx.sender in refused and isinstance(h, str)
                else h
                for tx, h in zip(txs, answers, strict=True)
            ]
            self.nonces.sync(refused)
        for tx, h in zip(txs, answers, strict=True):
            if isinstance(h, RpcError):
                self.counters.tx_rejected += 1
                self.rec.event(
                    self.blocks_done + 1, "Rejected", agent=tx.agent, kind=tx.kind, error=h.message
                )
        return answers

    # ------------------------------------------------------------------ folding receipts

    def _revert_reasons(self, block: int, reverted: list[tuple[Tx, dict[str, Any]]]) -> None:
        """Decode why each reverted transaction failed (its custom error), from one batch of traces."""
        if not reverted:
            return
        traces = self.rpc.batch(
            [
                ("debug_traceTransaction", [r["transactionHash"], {"tracer": "callTracer"}])
                for _, r in reverted
            ]
        )
        for (tx, r), trace in zip(reverted, traces, strict=True):
            output = trace.get("output", "") if isinstance(trace, dict) else ""
            decoded = self.errors.decode(output) if output and len(output) >= 10 else None
            reason = decoded.name if decoded else "unknown"
            count_revert(self.counters, tx.kind, reason)
            self.rec.event(
                block,
                "Reverted",
                agent=tx.agent,
                kind=tx.kind,
                target=tx.target,
                gas=int(r["gasUsed"], 16),
                reason=str(decoded) if decoded else reason,
                txHash=r["transactionHash"],
            )
