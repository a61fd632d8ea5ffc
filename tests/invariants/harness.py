"""Chain access and reference-model reads for the invariant suite (tests/test_invariants.py).

Speed: no web3 contract calls on the hot path. A transaction is one batched JSON-RPC request (its eth_call,
for the revert reason, then eth_sendTransaction) plus one for its receipt; the whole state the properties
read is one batch (`read`), the lens's answers a second (`read_lens`). Every health number is recomputed
with simulation.margin_math from those raw reads, so the properties compare the contracts with the model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3

from simulation import margin_math as mm
from simulation.abi import ContractAbi, EventDecoder, Function
from simulation.deploy import Deployment
from simulation.errors import ErrorDecoder
from simulation.rpc import Rpc, RpcError

GAS = hex(3_000_000)
CALL_GAS = hex(200_000_000)
USDC_DEC = 6
TOKENS = ("USDC", "WETH", "WBTC")
ASSETS = ("WETH", "WBTC")
PAGE = 1_000  # positions / accounts per lens page: the whole book


@dataclass
class Outcome:
    ok: bool
    logs: list[tuple[str, dict[str, Any]]]  # decoded (event name, args) of the receipt
    error: str | None  # decoded custom error name (or raw message) when the tx reverted

    def events(self, name: str) -> list[dict[str, Any]]:
        return [args for n, args in self.logs if n == name]


@dataclass
class ChainState:
    """Everything the properties read after a step, from one batch."""

    positions: dict[
        int, tuple
    ]  # id -> (owner, marketId, openIndex, size, margin, entry, fundingEntry)
    cross: dict[
        str, tuple
    ]  # account -> ((size, entry, fundingEntry) per market, ..., balance per token)
    balances: dict[tuple[str, str], int]  # (token symbol, holder) -> wallet balance
    insurance_coll: dict[str, int]  # the insurance fund's cross balances (forfeited collateral)
    claimable: dict[str, int]  # owner -> claimableQuote
    total_claimable: int
    prices: dict[str, int | None]  # asset symbol -> oracle price (None: stale / invalid)
    market_states: list[tuple[int, ...] | None]  # vault.marketState (None: reverted)
    vols: dict[str, int | None]
    latest_round: dict[str, int]
    cross_accounts: list[str]
    lp_shares: dict[str, int]
    pool_supply: int
    markets: list[tuple[Any, ...]] = field(default_factory=list)  # vault.market per market id
    timestamp: int = 0  # the latest block's: the views' block.timestamp
    deficits: dict[tuple[int, bool], int] = field(default_factory=dict)  # (market, long) -> owed
    total_deficit: int = 0  # vault.totalDeleverageDeficit
    portfolio: dict[str, bool] = field(default_factory=dict)  # trader -> margined on net risk
    quote_price: int = mm.WAD  # the quote's price the vault values it at (its feed's, or par)
    extra: dict[str, Any] = field(default_factory=dict)


class Harness:
    def __init__(
        self,
        system: Deployment,
        rpc: Any,
        owner: str,
        traders: list[str],
        keeper: str,
        lps: list[str],
    ):
        """`rpc`: a node's URL (anvil), or a transport with `call` and `batch` (simulation.revm_chain's
        InProcessRpc)."""
        self.rpc = Rpc(rpc) if isinstance(rpc, str) else rpc
        self._calldata: dict[Any, str] = {}
        """Encoded calldata of each read (the same few hundred every step: ABI encoding was a quarter of
        a step's time on revm)."""
        self.system = system
        self.owner, self.traders, self.keeper, self.lps = owner, traders, keeper, lps
        self.addr = {n: Web3.to_checksum_address(a) for n, a in system.addresses.items()}
        self.abi = {k: ContractAbi(a) for k, a in system.abis.items()}
        self.kind = system.kinds
        self.errors = ErrorDecoder(system.abis.values())
        self.events = EventDecoder(system.abis.values())
        self.vault_address = self.addr["MarginVault"]
        self.n_markets = self.call1("MarginVault", "marketCount")
        markets = [self.call1("MarginVault", "market", i) for i in range(self.n_markets)]
        by_address = {self.addr[s].lower(): s for s in ASSETS}
        self.market_symbol = [by_address[m[0].lower()] for m in markets]
        self.params = [m[5] for m in markets]  # fixed during a run
        self.collateral = [
            by_address[t.lower()] for t in self.call1("MarginVault", "collateralTokens")
        ]
        self.collateral_cfg = {
            s: self.call1("MarginVault", "collateralConfig", self.addr[s]) for s in self.collateral
        }
        self.decimals = {s: self.call1(s, "decimals") for s in TOKENS}
        self.vol_window = {
            s: self.call1("OracleAdapter", "feedConfig", self.addr[s])[3] for s in ASSETS
        }
        self._vol_cache: dict[tuple[str, int], int] = {}
        self.quote_feed = bool(self.call1("MarginVault", "quoteAtFeed"))
        """The quote has a feed (a depeg can be played): the vault values it there, and so does the model."""
        self.quote_price = mm.WAD
        """The quote's price at the latest `read` (the model's isolated health values margin at it)."""
        self.holders = [owner, keeper, *traders, *lps]
        self.holders += [self.addr[n] for n in ("MarginVault", "LPPool", "InsuranceFund")]
        self._ck = {a.lower(): a for a in self.holders}

    def ck(self, address: str) -> str:
        """The checksummed form of an address the fast decoder returns in lower case."""
        return self._ck.get(address.lower()) or Web3.to_checksum_address(address)

    def fund_actors(self) -> None:
        """Tokens and approvals for every actor of the suite: traders, the keeper, the LPs."""
        for who, amounts in [
            *((t, {"USDC": 1_000_000, "WETH": 200, "WBTC": 10}) for t in self.traders),
            (self.keeper, {"USDC": 50_000_000}),
            *((lp, {"USDC": 10**9}) for lp in self.lps),
        ]:
            for symbol, whole in amounts.items():
                self.must(symbol, "mint", (who, whole * 10 ** self.decimals[symbol]), self.owner)
                spender = "LPPool" if who in self.lps else "MarginVault"
                self.must(symbol, "approve", (self.addr[spender], 2**256 - 1), who)

    # ---------------------------------------------------------------- raw calls

    def fn(self, contract: str, name: str) -> Function:
        return self.abi[self.kind[contract]][name]

    def eth_call(self, contract: str, name: str, *args: Any) -> tuple[str, list[Any]]:
        key = (contract, name, args)
        try:
            data = self._calldata.get(key)
        except TypeError:  # an unhashable argument (a list): encoded every time
            key, data = None, None
        if data is None:
            data = self.fn(contract, name).calldata(*args)
            if key is not None:
                self._calldata[key] = data
        return "eth_call", [{"to": self.addr[contract], "data": data, "gas": CALL_GAS}, "latest"]

    def decode(self, contract: str, name: str, answer: Any) -> Any:
        """One call's answer: its single output (or the tuple of several), None for a revert."""
        if isinstance(answer, RpcError):
            return None
        out = self.fn(contract, name).decode_output(answer)
        return out[0] if len(out) == 1 else out

    def call1(self, contract: str, name: str, *args: Any) -> Any:
        return self.decode(
            contract, name, self.rpc.batch([self.eth_call(contract, name, *args)])[0]
        )

    def calls(self, specs: list[tuple[Any, ...]]) -> list[Any]:
        """Many (contract, function, *args) calls in one request, decoded (None where one reverted)."""
        answers = self.rpc.batch([self.eth_call(*s) for s in specs])
        return [self.decode(s[0], s[1], a) for s, a in zip(specs, answers, strict=True)]

    def rpc1(self, method: str, params: list[Any]) -> Any:
        return self.rpc.call(method, params)

    def send(self, contract: str, name: str, args: tuple[Any, ...], sender: str) -> Outcome:
        tx = {
            "from": sender,
            "to": self.addr[contract],
            "data": self.fn(contract, name).calldata(*args),
            "gas": GAS,
        }
        call, sent = self.rpc.batch([("eth_call", [tx, "latest"]), ("eth_sendTransaction", [tx])])
        if isinstance(sent, RpcError):
            raise RuntimeError(f"{name} not sent: {sent}")
        receipt = self.rpc.call("eth_getTransactionReceipt", [sent])
        while receipt is None:  # automine answers the send before the block is stored
            time.sleep(0.001)
            receipt = self.rpc.call("eth_getTransactionReceipt", [sent])
        if int(receipt["status"], 16) == 1:
            logs = [d for d in map(self.events.decode, receipt["logs"]) if d is not None]
            return Outcome(True, logs, None)
        error = "reverted (call succeeds: out of gas?)"
        if isinstance(call, RpcError):
            data = call.data if isinstance(call.data, str) else None
            decoded = self.errors.decode(data) if data and len(data) >= 10 else None
            error = decoded.name if decoded else call.message[:80]
        return Outcome(False, [], error)

    def must(self, contract: str, name: str, args: tuple[Any, ...], sender: str) -> Outcome:
        out = self.send(contract, name, args, sender)
        assert out.ok, f"{contract}.{name}{args} from {sender} reverted: {out.error}"
        return out

    def advance(self, seconds: int) -> None:
        """The next block comes `seconds` after the latest (the suite pins block times: see the test)."""
        if seconds:
            latest = int(self.rpc1("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
            self.rpc1("evm_setNextBlockTimestamp", [latest + seconds])

    @contextmanager
    def frozen_time(self) -> Iterator[None]:
        """Blocks mined inside come at the latest block's timestamp (the suite's interval is 1 s): no time
        passes, so no funding accrues, between a property's reads before and after."""
        self.rpc1("anvil_setBlockTimestampInterval", [0])
        try:
            yield
        finally:
            self.rpc1("anvil_setBlockTimestampInterval", [1])

    def snapshot(self) -> str:
        return str(self.rpc1("evm_snapshot", []))

    def revert(self, snap: str) -> None:
        assert self.rpc1("evm_revert", [snap]) is True, "evm_revert failed"

    # ---------------------------------------------------------------- state

    def read(self) -> ChainState:
        """The state the properties check, one batch."""
        t, n = self.traders, self.n_markets
        specs: list[tuple[Any, ...]] = [("MarginVault", "openPositions", 0, PAGE)]
        for a in t:
            specs += [("MarginVault", "crossPosition", a, m) for m in range(n)]
            specs += [("MarginVault", "collateralBalance", a, self.addr[s]) for s in TOKENS]
            specs.append(("MarginVault", "claimableQuote", a))
        ins = self.addr["InsuranceFund"]
        specs += [("MarginVault", "collateralBalance", ins, self.addr[s]) for s in TOKENS]
        specs += [(s, "balanceOf", h) for s in TOKENS for h in self.holders]
        specs += [("OracleAdapter", "priceWadOrZero", self.addr[s]) for s in ASSETS]
        specs += [("MarginVault", "marketState", m) for m in range(n)]
        specs += [("OracleAdapter", "hourlyVolatilityWad", self.addr[s]) for s in ASSETS]
        specs += [(f"FEED_{s}", "latestRoundData") for s in ASSETS]
        specs += [("MarginVault", "totalClaimableQuote"), ("MarginVault", "crossAccounts", 0, PAGE)]
        specs += [("LPPool", "balanceOf", x) for x in (self.owner, *self.lps)]
        specs.append(("LPPool", "totalSupply"))
        specs += [("MarginVault", "market", m) for m in range(n)]
        sides = [(m, long) for m in range(n) for long in (True, False)]
        specs += [("MarginVault", "deleverageDeficit", m, long) for m, long in sides]
        specs.append(("MarginVault", "totalDeleverageDeficit"))
        specs += [("MarginVault", "portfolioMargin", a) for a in t]
        if self.quote_feed:
            specs.append(("MarginVault", "quotePriceWad"))
        timestamp = int(self.rpc1("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        r = iter(self.calls(specs))
        ids, ps = next(r)
        positions = {int(i): (self.ck(p[0]), *p[1:]) for i, p in zip(ids, ps, strict=True)}
        cross, claimable = {}, {}
        for a in t:
            legs = tuple(tuple(next(r)) for _ in range(n))
            cross[a] = legs + tuple(next(r) for _ in TOKENS)
            claimable[a] = next(r)
        insurance_coll = {s: next(r) for s in TOKENS}
        balances = {(s, h): next(r) for s in TOKENS for h in self.holders}
        prices = {s: (p or None) for s, p in zip(ASSETS, [next(r) for _ in ASSETS], strict=True)}
        states = [next(r) for _ in range(n)]
        vols = {s: next(r) for s in ASSETS}
        latest = {s: int(next(r)[0]) for s in ASSETS}
        total_claimable, accounts = next(r), [self.ck(a) for a in next(r)]
        lp_shares = {x: next(r) for x in (self.owner, *self.lps)}
        return ChainState(
            positions,
            cross,
            balances,
            insurance_coll,
            claimable,
            total_claimable,
            prices,
            [tuple(s) if s else None for s in states],
            vols,
            latest,
            accounts,
            lp_shares,
            next(r),
            [tuple(next(r)) for _ in range(n)],
            timestamp,
            {side: next(r) for side in sides},
            next(r),
            {a: bool(next(r)) for a in t},
            self._quote_price(next(r) if self.quote_feed else mm.WAD),
        )

    def _quote_price(self, read: int | None) -> int:
        """Remember the quote's price of this read (the suite keeps its feed fresh: it never reverts)."""
        assert read, "the quote feed went stale: the suite refreshes it with every time step"
        self.quote_price = read
        return read

    def read_lens(self, st: ChainState) -> dict[str, Any]:
        """The lens's health of every position and account, and its scans (None where one reverted)."""
        specs: list[tuple[Any, ...]] = [
            ("MarginLens", "isolatedHealth", pid) for pid in st.positions
        ]
        specs += [("MarginLens", "accountHealth", a) for a in self.traders]
        specs += [("MarginLens", "scanIsolated", 0, PAGE), ("MarginLens", "scanCross", 0, PAGE)]
        out = self.calls(specs)
        k = len(st.positions)
        return {
            "isolated": dict(zip(st.positions, out[:k], strict=True)),
            "accounts": dict(zip(self.traders, out[k : k + len(self.traders)], strict=True)),
            "scanIsolated": out[-2],
            "scanCross": out[-1],
        }

    def coll(self, st: ChainState, account: str, token: str) -> int:
        return int(st.cross[account][self.n_markets + TOKENS.index(token)])

    # ---------------------------------------------------------------- reference model

    def model_volatility(self, symbol: str, latest: int) -> int:
        if (symbol, latest) not in self._vol_cache:
            window = self.vol_window[symbol]
            first = max(1, latest - window)
            rounds = self.calls(
                [(f"FEED_{symbol}", "getRoundData", r) for r in range(first, latest + 1)]
            )
            pairs = [(int(x[1]), int(x[3])) for x in rounds]
            self._vol_cache[symbol, latest] = mm.hourly_volatility_wad(pairs, window)
        return self._vol_cache[symbol, latest]

    def model_market_state(self, st: ChainState, m: int) -> tuple[int, ...] | None:
        """(price, initial ratio, maintenance ratio, tier notional, tier ratio, funding index) from the
        oracle, the market params and its stored funding, via the model; None when the market's feed
        cannot be read."""
        params, symbol = self.params[m], self.market_symbol[m]
        price = st.prices[symbol]
        if price is None:
            return None
        buffer = 0
        if params[11] > 0:
            vol = self.model_volatility(symbol, st.latest_round[symbol])
            buffer = mm.volatility_buffer_up(vol, params[9], params[10], params[11])
        # (asset, long OI, short OI, net size, net entry, params, index, updated at, net funding)
        book = st.markets[m]
        oi = int(book[1]) + int(book[2])
        elapsed = st.timestamp - int(book[7])
        index = int(book[6]) + mm.funding_index_delta_away_from_zero(
            price, params[16], int(book[3]), oi, elapsed
        )
        return price, params[0] + buffer, params[1] + buffer, params[14], params[15], index

    def states(self, st: ChainState) -> dict[int, tuple[int, ...] | None]:
        return {m: self.model_market_state(st, m) for m in range(self.n_markets)}

    def model_isolated_health(self, p: tuple, states: dict[int, Any]) -> mm.Health | None:
        _, market_id, _, size, margin, entry, funding_entry = p
        state = states[market_id]
        if state is None:
            return None
        funding = mm.funding_pnl_usd_floor(size, funding_entry, state[5])
        return mm.position_health(
            mm.quote_to_usd_down(margin, USDC_DEC, self.quote_price) + funding,
            size,
            entry,
            *state[:5],
        )

    def model_account_health(
        self, st: ChainState, account: str, states: dict[int, Any]
    ) -> mm.Health | None:
        """Collateral whose feed is stale counts 0 (the vault's rule); None when a market the account
        trades cannot be priced."""
        equity = mm.quote_to_usd_down(self.coll(st, account, "USDC"), USDC_DEC, st.quote_price)
        for s in self.collateral:
            amount, price = self.coll(st, account, s), st.prices[s]
            if amount and price is not None:
                _, dec, weight, _ = self.collateral_cfg[s]
                equity += mm.mul_wad_down(mm.value_usd_down(amount, dec, price), weight)
        h = mm.Health(equity, 0, 0)
        signed: list[tuple[int, int]] = []  # each leg's (initial, maintenance), signed by side
        for m in range(self.n_markets):
            size, entry, funding_entry = st.cross[account][m]
            if size:
                state = states[m]
                if state is None:
                    return None
                funding = mm.funding_pnl_usd_floor(size, funding_entry, state[5])
                leg = mm.position_health(funding, size, entry, *state[:5])
                h = h + leg
                sign = 1 if size > 0 else -1
                signed.append((sign * leg.initial_usd, sign * leg.maintenance_usd))
        if st.portfolio.get(account):  # requirements on net risk
            corr = mm.PORTFOLIO_CORRELATION_WAD
            initial = mm.portfolio_requirement_usd_up([i for i, _ in signed], corr)
            maintenance = mm.portfolio_requirement_usd_up([m for _, m in signed], corr)
            h = mm.Health(h.equity_usd, initial, maintenance)
        return h

    def value_quote(self, st: ChainState, symbol: str, amount: int) -> int:
        """Oracle value of `amount` of a token, in quote units at the quote's price (rounded down)."""
        if symbol == "USDC":
            return amount
        price = st.prices[symbol] or 0
        return mm.usd_to_quote_down(
            mm.value_usd_down(amount, self.decimals[symbol], price), USDC_DEC, st.quote_price
        )
