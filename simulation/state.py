"""What agents see, the Snapshot of the chain after a block, and the reader that builds it in one batched
request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from simulation import margin_math as mm
from simulation.abi import ContractAbi, Function
from simulation.rpc import Rpc, RpcError

# ---------------------------------------------------------------------- what agents see


@dataclass(frozen=True)
class MarketView:
    """A market after the block: oracle price and effective ratios (None while the oracle is stale)."""

    market_id: int
    name: str
    symbol: str
    price_wad: int | None
    initial_ratio_wad: int | None
    maintenance_ratio_wad: int | None
    oi_long_wad: int
    """Open interest of the longs, in units of the base asset (wad)."""
    oi_short_wad: int
    tier_notional_usd: int = 0
    """Notional (USD wad) above which requirements carry `tier_ratio_wad` more (size-tiered margin)."""
    tier_ratio_wad: int = 0
    funding_index_wad: int = 0
    """The funding index brought up to the block (`MarketState.fundingIndexWad`; the stored one while the
    market is stale): what a position of size 1 long has paid since the market opened, USD wad."""
    net_size_wad: int = 0
    """Longs less shorts, in units of the base asset (wad)."""
    funding_rate_wad: int = 0
    """`MarketParams.fundingRateWad`: funding per day at full skew."""
    deficit_long_quote: int = 0
    """Bad debt beyond the pool's loss cap owed by the market's profitable longs (auto-deleveraging),
    quote tokens."""
    deficit_short_quote: int = 0
    """The same, owed by its profitable shorts."""

    @property
    def funding_rate_day_wad(self) -> int:
        """The funding rate now, a fraction of price per day (wad): + longs pay, - shorts pay."""
        oi = self.oi_long_wad + self.oi_short_wad
        return self.funding_rate_wad * self.net_size_wad // oi if oi else 0

    def health(
        self, margin_usd: int, size: int, entry_price_wad: int, price_wad: int | None = None
    ) -> mm.Health | None:
        """A position's health at this market's ratios and tier, at its oracle price (or at `price_wad`);
        None while the market is stale."""
        if (
            self.price_wad is None
            or self.initial_ratio_wad is None
            or self.maintenance_ratio_wad is None
        ):
            return None
        return mm.position_health(
            margin_usd,
            size,
            entry_price_wad,
            self.price_wad if price_wad is None else price_wad,
            self.initial_ratio_wad,
            self.maintenance_ratio_wad,
            self.tier_notional_usd,
            self.tier_ratio_wad,
        )


@dataclass(frozen=True)
class IsolatedView:
    position_id: int
    owner: str
    market_id: int
    size_wad: int
    """Signed: + long, - short, in units of the base asset."""
    margin_quote: int
    entry_price_wad: int
    funding_entry_wad: int = 0
    funding_usd: int = 0
    """Funding accrued since its last trade at the block's index, USD wad (+ paid to it, - owed)."""
    quote_price_wad: int = mm.WAD
    """The quote token's USD price its margin is valued at (the vault's `quotePriceWad`)."""

    @property
    def margin_and_funding_usd(self) -> int:
        """Its margin in USD wad (at the quote's price) plus the funding accrued: the equity its PnL adds
        to."""
        return (
            mm.quote_to_usd_down(self.margin_quote, QUOTE_DECIMALS, self.quote_price_wad)
            + self.funding_usd
        )


@dataclass(frozen=True)
class CrossView:
    """A cross account of an agent: its health (USD wad) and per-market positions (size, entry)."""

    equity_usd: int
    initial_usd: int
    maintenance_usd: int
    positions: dict[int, tuple[int, int]]
    balance_quote: int
    """Its quote-token collateral."""
    funding_usd: dict[int, int] = field(default_factory=dict)
    """Per market of an open position: funding accrued since its last trade, USD wad (in equity_usd)."""


@dataclass(frozen=True)
class LpView:
    """An address's LP shares after the block (LPPool's two-step exit)."""

    held_shares: int
    """Shares in its wallet."""
    requestable_shares: int
    """Shares it may put in an exit request now (`maxRequestRedeem`: 0 while locked or pending)."""
    pending_shares: int = 0
    """Shares escrowed by its pending exit."""
    pending_quote: int = 0
    """Their value at the request, quote tokens: the most the claim pays."""
    ready_at_s: int = 0
    """When the pending exit can be claimed (unix seconds)."""

    def claimable(self, timestamp: int) -> bool:
        return self.pending_shares > 0 and timestamp >= self.ready_at_s


NO_LP = LpView(0, 0)


@dataclass(frozen=True)
class WalletView:
    """What an adversary's address holds after the block (read only for adversaries)."""

    tokens_units: dict[str, int]
    """Wallet balance per token symbol (USDC, WETH, WBTC), in the token's decimals."""
    collateral_units: dict[str, int]
    """Cross-account collateral in the vault per token symbol (USDC included)."""
    lp: LpView
    claimable_quote: int
    """Quote tokens full liquidations left it (`vault.claimableQuote`)."""


@dataclass(frozen=True)
class Snapshot:
    """Chain state after block `block`, read in one batched request."""

    block: int
    timestamp_s: int
    base_fee_wei: int
    markets: tuple[MarketView, ...]
    oracle_rounds: dict[str, tuple[int, int]]
    """Per asset symbol: (answer, updatedAt) of the feed's latest round."""
    positions: dict[int, IsolatedView]
    cross: dict[str, CrossView]
    liquidatable_isolated: tuple[int, ...]
    liquidatable_cross: tuple[str, ...]
    pool_assets_quote: int
    pool_supply_shares: int
    """LP shares outstanding (18 decimals)."""
    pool_cash_quote: int
    insurance_quote: int
    lp_shares: dict[str, LpView] = field(default_factory=dict)
    """Per LP agent's address: its shares."""
    wallets: dict[str, WalletView] = field(default_factory=dict)
    """Per adversary address: what it holds (empty without adversaries)."""
    trading_liquidity_quote: int = 0
    """`LPPool.tradingLiquidity()`, quote tokens (read only with adversaries)."""
    quote_price_wad: int = mm.WAD
    """The quote token's USD price the vault values it at, wad (`vault.quotePriceWad`): its feed's latest
    round with `quoteAtFeed`, else par."""

    def market(self, market_id: int) -> MarketView:
        return self.markets[market_id]

    def cross_account(self, address: str) -> CrossView | None:
        """The cross account of `address`, whatever its case (events give addresses lower-case)."""
        acct = self.cross.get(address)
        if acct is not None:
            return acct
        low = address.lower()
        return next((v for k, v in self.cross.items() if k.lower() == low), None)


QUOTE_DECIMALS = 6
QUOTE_FEED_DECIMALS = 8
"""The quote's feed answers with 8 decimals: the local mock's and Chainlink's USDC / USD alike."""


def quote_price_wad(rounds: dict[str, tuple[int, int]]) -> int:
    """The quote's price from its feed's latest round, as the adapter reads it."""
    return rounds["USDC"][0] * 10 ** (18 - QUOTE_FEED_DECIMALS)


# ---------------------------------------------------------------------- the reader

SCAN_PAGE = 100_000
"""Positions per scan call: the whole book in one call (eth_call gas is raised for it)."""
CALL_GAS = hex(2_000_000_000)
LP_UINTS = ("balanceOf", "maxRequestRedeem")


@dataclass(frozen=True)
class Addresses:
    vault: str
    lens: str
    pool: str
    insurance: str
    usdc: str
    feeds: dict[str, str]
    """Feed address per asset symbol (ETH, BTC)."""


class ChainReader:
    def __init__(
        self,
        rpc: Rpc,
        addr: Addresses,
        abis: dict[str, ContractAbi],
        markets: dict[int, tuple[str, str]],
        token_kind: str = "MockERC20",
        feed_kind: str = "MockAggregator",
    ):
        """`token_kind`, `feed_kind`: the ABI names of the tokens and feeds (ERC20 and
        EACAggregatorProxy on a fork)."""
        self.rpc, self.addr, self.markets = rpc, addr, markets
        self.vault, self.lens = abis["MarginVault"], abis["MarginLens"]
        self.pool, self.token, self.feed = abis["LPPool"], abis[token_kind], abis[feed_kind]
        self.cross_accounts: list[str] = []
        self.lps: list[str] = []
        self.quote_at_feed = False
        """The vault values the quote at its feed (`vault.quoteAtFeed()`, read once by the engine); else
        at par, whatever the feed says."""
        self.read_deficits = False
        """Whether snapshots read each market's deleveraging deficits (only where a market caps the
        pool's losses: elsewhere they stay 0)."""
        self.wallets: list[str] = []
        """Adversary addresses whose holdings each snapshot reads (WalletView)."""
        self.tokens: dict[str, str] = {}
        """Token symbol -> address, for the wallets' balances (USDC, WETH, WBTC)."""

    def _call(self, to: str, fn: Function, *args: Any) -> tuple[str, list[Any]]:
        return "eth_call", [{"to": to, "data": fn.calldata(*args), "gas": CALL_GAS}, "latest"]

    def views(
        self, calls: Sequence[tuple[str, Function, tuple[Any, ...]]]
    ) -> list[tuple[Any, ...]]:
        """Read-only calls `(to, function, args)` in one batch, decoded; one that reverts raises (what
        set-up reads must answer)."""
        res = self.rpc.batch([self._call(to, fn, *args) for to, fn, args in calls])
        out = []
        for (_, fn, _), r in zip(calls, res, strict=True):
            if isinstance(r, RpcError):
                raise RuntimeError(f"{fn.name} reverted at set-up: {r.message}")
            out.append(fn.decode_output(r))
        return out

    def snapshot(self) -> Snapshot:
        calls = self.snapshot_calls()
        return self.parse(self.rpc.batch(calls))

    def snapshot_calls(self) -> list[tuple[str, list[Any]]]:
        """The calls of one snapshot, to send alone or after other calls in the same batch."""
        a, v = self.addr, self.vault
        calls = [("eth_getBlockByNumber", ["latest", False])]
        for m in self.markets:
            calls += [self._call(a.vault, v["marketState"], m), self._call(a.vault, v["market"], m)]
            if self.read_deficits:
                calls += [
                    self._call(a.vault, v["deleverageDeficit"], m, long) for long in (True, False)
                ]
        calls += [self._call(a.feeds[s], self.feed["latestRoundData"]) for s in a.feeds]
        calls += [
            self._call(
                a.lens, self.lens["isolatedBook"], 0, SCAN_PAGE
            ),  # the book and the keepers' scan
            self._call(a.lens, self.lens["scanCross"], 0, SCAN_PAGE),
            self._call(a.pool, self.pool["totalAssets"]),
            self._call(a.pool, self.pool["totalSupply"]),
            self._call(a.usdc, self.token["balanceOf"], a.pool),
            self._call(a.usdc, self.token["balanceOf"], a.insurance),
        ]
        if self.cross_accounts:
            calls.append(self._call(a.lens, self.lens["accountBooks"], self.cross_accounts))
        for lp in self.lps:
            calls += self._lp_calls(lp)
        calls += self._wallet_calls()
        return calls

    def _lp_calls(self, who: str) -> list[tuple[str, list[Any]]]:
        pool, p = self.addr.pool, self.pool
        return [
            self._call(pool, p[fn], who) for fn in ("balanceOf", "maxRequestRedeem", "pendingExit")
        ]

    def _parse_lp(self, res: list[Any]) -> LpView:
        """The answers of `_lp_calls` (a revert, e.g. of a stale oracle, reads as nothing)."""
        held, requestable = (
            self._out(self.pool[f], r) for f, r in zip(LP_UINTS, res[:2], strict=True)
        )
        pending = self._out(self.pool["pendingExit"], res[2])
        shares, ready_at, assets = pending[0] if pending else (0, 0, 0)
        return LpView(
            int(held[0]) if held else 0,
            int(requestable[0]) if requestable else 0,
            int(shares),
            int(assets),
            int(ready_at),
        )

    def _wallet_calls(self) -> list[tuple[str, list[Any]]]:
        if not self.wallets:
            return []
        a, v, bal = self.addr, self.vault, self.token["balanceOf"]
        calls = [self._call(a.pool, self.pool["tradingLiquidity"])]
        for w in self.wallets:
            calls += [self._call(t, bal, w) for t in self.tokens.values()]
            calls += [
                self._call(a.vault, v["collateralBalance"], w, t) for t in self.tokens.values()
            ]
            calls += self._lp_calls(w)
            calls.append(self._call(a.vault, v["claimableQuote"], w))
        return calls

    def _parse_wallets(self, res: list[Any]) -> tuple[int, dict[str, WalletView]]:
        """(trading liquidity, wallets) from the answers of `_wallet_calls`."""
        if not self.wallets:
            return 0, {}

        def uint(answer: Any) -> int:
            return 0 if isinstance(answer, RpcError) else int(answer, 16)

        liquidity, i, n = uint(res[0]), 1, len(self.tokens)
        wallets = {}
        for w in self.wallets:
            tokens = {s: uint(res[i + k]) for k, s in enumerate(self.tokens)}
            collateral = {s: uint(res[i + n + k]) for k, s in enumerate(self.tokens)}
            i += 2 * n
            lp = self._parse_lp(res[i : i + 3])
            wallets[w] = WalletView(tokens, collateral, lp, uint(res[i + 3]))
            i += 4
        return liquidity, wallets

    def _out(self, fn: Function, answer: Any) -> tuple[Any, ...] | None:
        if isinstance(answer, RpcError):
            return None  # a revert: stale oracle, most often
        return fn.decode_output(answer)

    def parse(self, res: list[Any]) -> Snapshot:
        symbols = list(self.addr.feeds)
        v = self.vault
        block = res[0]
        i = 1
        markets = []
        for m, (name, symbol) in self.markets.items():
            state, book = self._out(v["marketState"], res[i]), self._out(v["market"], res[i + 1])
            i += 2
            owed = (0, 0)
            if self.read_deficits:
                deficits = [self._out(v["deleverageDeficit"], r) for r in res[i : i + 2]]
                owed = (
                    int(deficits[0][0]) if deficits[0] else 0,
                    int(deficits[1][0]) if deficits[1] else 0,
                )
                i += 2
            assert book is not None
            # Market: asset, long OI, short OI, net size, net entry, params, index, at, net funding
            stored_index = int(book[0][6])
            price, im, mm_, tier, tier_ratio, index = (
                state[0] if state else (None, None, None, 0, 0, stored_index)
            )
            oi = int(book[0][1]), int(book[0][2])
            terms = (int(index), int(book[0][3]), int(book[0][5][16]))
            markets.append(
                MarketView(m, name, symbol, price, im, mm_, *oi, tier, tier_ratio, *terms, *owed)
            )
        rounds = {}
        for s in symbols:
            out = self._out(self.feed["latestRoundData"], res[i])
            assert out is not None
            rounds[s] = (int(out[1]), int(out[3]))
            i += 1
        quote_price = quote_price_wad(rounds) if self.quote_at_feed else mm.WAD
        book = self._out(self.lens["isolatedBook"], res[i])
        scan_cross = self._out(self.lens["scanCross"], res[i + 1])
        totals = [
            self._out(f, r)
            for f, r in zip(
                (
                    self.pool["totalAssets"],
                    self.pool["totalSupply"],
                    self.token["balanceOf"],
                    self.token["balanceOf"],
                ),
                res[i + 2 : i + 6],
                strict=True,
            )
        ]
        i += 6
        positions = {}
        liquidatable_isolated = []
        if book:
            for pid, p, liquidatable in zip(book[0], book[1], book[2], strict=True):
                size, entry_index = int(p[3]), int(p[6])
                index = markets[int(p[1])].funding_index_wad
                accrued = mm.funding_pnl_usd_floor(size, entry_index, index)
                positions[int(pid)] = IsolatedView(
                    int(pid),
                    p[0],
                    int(p[1]),
                    size,
                    int(p[4]),
                    int(p[5]),
                    entry_index,
                    accrued,
                    quote_price,
                )
                if liquidatable:
                    liquidatable_isolated.append(int(pid))
        cross = {}
        if self.cross_accounts:
            books = self._out(self.lens["accountBooks"], res[i])
            i += 1
            n = len(self.markets)
            for k, acct in enumerate(self.cross_accounts if books else ()):
                assert books is not None
                healths, sizes, entries, quotes, funding_entries = books
                legs = {
                    m: (sizes[k * n + m], entries[k * n + m])
                    for m in range(n)
                    if sizes[k * n + m] != 0
                }
                funding = {
                    m: mm.funding_pnl_usd_floor(
                        size, funding_entries[k * n + m], markets[m].funding_index_wad
                    )
                    for m, (size, _) in legs.items()
                }
                eq, init, maint = healths[k]
                cross[acct] = CrossView(eq, init, maint, legs, quotes[k], funding)
        lp_shares = {}
        for lp in self.lps:
            lp_shares[lp] = self._parse_lp(res[i : i + 3])
            i += 3
        liquidity, wallets = self._parse_wallets(res[i:])
        total_assets, supply, cash, insurance = (int(t[0]) if t else 0 for t in totals)
        return Snapshot(
            block=int(block["number"], 16),
            timestamp_s=int(block["timestamp"], 16),
            base_fee_wei=int(block.get("baseFeePerGas", "0x0"), 16),
            markets=tuple(markets),
            oracle_rounds=rounds,
            positions=positions,
            cross=cross,
            liquidatable_isolated=tuple(liquidatable_isolated),
            liquidatable_cross=tuple(scan_cross[0]) if scan_cross else (),
            pool_assets_quote=total_assets,
            pool_supply_shares=supply,
            pool_cash_quote=cash,
            insurance_quote=insurance,
            lp_shares=lp_shares,
            wallets=wallets,
            trading_liquidity_quote=liquidity,
            quote_price_wad=quote_price,
        )
