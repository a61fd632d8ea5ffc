"""The invariant suite's handlers (actions): random isolated and cross trading by three traders and price
moves. Liquidation, LP and stale-feed handlers are in risk.py; the properties they check in properties.py.
After every step one invariant reads the chain (two batched requests) and runs every property."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from simulation.units import WAD

from . import properties as prop
from .harness import USDC_DEC, ChainState, Harness, Outcome

"""Steps between two runs of the model-vs-lens properties (health, scans, market states)."""
STATS: Counter = Counter()

actor = st.integers(0, 2)
market = st.integers(0, 1)
usd = st.integers(100, 5000)
pick = st.integers(0, 10**6)
percent = st.integers(1, 100)


class BaseMachine(RuleBasedStateMachine):
    h: Harness  # set by the test before running
    snapshot: str
    usdc_supply: int

    @initialize(deposits=st.lists(st.integers(0, 10_000), min_size=3, max_size=3))
    def reset_chain(self, deposits: list[int]) -> None:
        h = self.h
        h.revert(BaseMachine.snapshot)
        BaseMachine.snapshot = h.snapshot()
        h._vol_cache.clear()  # round ids restart after the revert
        self.violations: list[str] = []
        self._st: ChainState | None = None
        self.steps = 0
        STATS["examples"] += 1
        for trader, amount in zip(
            h.traders, deposits, strict=True
        ):  # a cross account to start from
            if amount:
                h.must(
                    "MarginVault",
                    "depositCollateral",
                    (h.addr["USDC"], amount * 10**USDC_DEC),
                    trader,
                )

    def has_positions(self) -> bool:
        return bool(self.state().positions)

    # ------------------------------------------------------------------ plumbing

    def state(self) -> ChainState:
        if self._st is None:
            self._st = self.h.read()
        return self._st

    def dirty(self) -> None:
        """The chain changed outside `_act`: read it again next time."""
        self._st = None

    def _act(
        self,
        name: str,
        sender: str,
        fn: str,
        args: tuple[Any, ...],
        positions: Any = (),
        accounts: Any = (),
    ) -> Outcome:
        """Send `fn`; every isolated position / cross account not in the touched sets must be unchanged."""
        before = self.state()
        out = self.h.send("MarginVault", fn, args, sender)
        STATS["steps"] += 1
        STATS[f"{name}:{'ok' if out.ok else out.error}"] += 1
        self._st = after = self.h.read()
        self.violations += prop.check_isolation(name, before, after, positions, accounts)
        return out

    def _some_position(self, i: int, owner: str | None = None) -> int | None:
        ps = self.state().positions
        mine = sorted(pid for pid, p in ps.items() if owner is None or p[0] == owner)
        return mine[i % len(mine)] if mine else None

    def price(self, m: int) -> int:
        p = self.state().prices[self.h.market_symbol[m]]
        assert p is not None
        return p

    # ------------------------------------------------------------------ isolated

    @rule(a=actor, m=market, long=st.booleans(), lev=st.integers(1, 19), margin=usd)
    def open_isolated(self, a: int, m: int, long: bool, lev: int, margin: int) -> None:
        size = margin * WAD * lev * WAD // self.price(m) * (1 if long else -1)
        self._act(
            "openIsolated", self.h.traders[a], "openIsolated", (m, size, margin * 10**USDC_DEC)
        )

    @precondition(has_positions)
    @rule(a=actor, i=pick, amount=usd)
    def add_margin(self, a: int, i: int, amount: int) -> None:
        pid = self._some_position(i)
        if pid is not None:  # anyone may add margin
            args = (pid, amount * 10**USDC_DEC)
            self._act("addMargin", self.h.traders[a], "addIsolatedMargin", args, positions={pid})

    @precondition(has_positions)
    @rule(a=actor, i=pick, pct=percent)
    def remove_margin(self, a: int, i: int, pct: int) -> None:
        trader = self.h.traders[a]
        pid = self._some_position(i, trader)
        if pid is not None:
            amount = max(1, self.state().positions[pid][4] * pct // 100)
            self._act(
                "removeMargin", trader, "removeIsolatedMargin", (pid, amount), positions={pid}
            )

    @precondition(has_positions)
    @rule(a=actor, i=pick, grow=st.booleans(), pct=st.integers(1, 150))
    def modify_isolated(self, a: int, i: int, grow: bool, pct: int) -> None:
        trader = self.h.traders[a]
        pid = self._some_position(i, trader)
        if pid is not None:
            size = self.state().positions[pid][3]
            delta = size * pct // 100 if grow else -(size * min(pct, 100) // 100)
            name = "growIsolated" if grow else "reduceIsolated"
            self._act(name, trader, "modifyIsolated", (pid, delta), positions={pid})

    @precondition(has_positions)
    @rule(a=actor, i=pick)
    def close_isolated(self, a: int, i: int) -> None:
        trader = self.h.traders[a]
        pid = self._some_position(i, trader)
        if pid is not None:
            self._act("closeIsolated", trader, "closeIsolated", (pid,), positions={pid})

    # ------------------------------------------------------------------ cross

    @rule(a=actor)
    def toggle_portfolio(self, a: int) -> None:
        """A cross account switches portfolio margin on (always allowed: requirements only fall) or off
        (refused `BelowInitialMargin` exactly when the model says leg-by-leg margin would not meet the
        initial requirement)."""
        h, trader = self.h, self.h.traders[a]
        s = self.state()
        on = not s.portfolio.get(trader, False)
        leg_by_leg = h.model_account_health(
            replace(s, portfolio={**s.portfolio, trader: False}), trader, h.states(s)
        )
        has_legs = any(s.cross[trader][m][0] for m in range(h.n_markets))
        step = "portfolio:on" if on else "portfolio:off"
        out = self._act(step, trader, "setPortfolioMargin", (on,), accounts={trader})
        if on or not has_legs or leg_by_leg is None:
            if not out.ok and (on or not has_legs):
                self.violations.append(
                    f"setPortfolioMargin({on}) by {trader} reverted: {out.error}"
                )
            return
        refused = leg_by_leg.equity_usd < leg_by_leg.initial_usd
        if out.ok == refused or (not out.ok and out.error != "BelowInitialMargin"):
            self.violations.append(
                f"setPortfolioMargin(False) by {trader}: model {leg_by_leg}, outcome {out.error or 'ok'}"
            )

    @rule(a=actor, token=st.sampled_from(["USDC", "WETH", "WBTC"]), amount=st.integers(100, 20_000))
    def deposit(self, a: int, token: str, amount: int) -> None:
        h, trader = self.h, self.h.traders[a]
        if token == "USDC":
            raw = amount * 10**6
        else:
            price = self.state().prices[token]
            if price is None:
                return
            raw = amount * WAD * 10 ** h.decimals[token] // price
        args = (h.addr[token], raw)
        self._act(f"deposit{token}", trader, "depositCollateral", args, accounts={trader})

    @rule(a=actor, token=st.sampled_from(["USDC", "WETH", "WBTC"]), pct=percent)
    def withdraw(self, a: int, token: str, pct: int) -> None:
        h, trader = self.h, self.h.traders[a]
        bal = h.coll(self.state(), trader, token)
        if bal:
            args = (h.addr[token], max(1, bal * pct // 100))
            self._act(f"withdraw{token}", trader, "withdrawCollateral", args, accounts={trader})

    @rule(
        a=actor,
        m=market,
        kind=st.sampled_from(["grow", "reduce", "close"]),
        long=st.booleans(),
        notional=st.integers(100, 50_000),
        pct=st.integers(1, 99),
    )
    def trade_cross(self, a: int, m: int, kind: str, long: bool, notional: int, pct: int) -> None:
        trader = self.h.traders[a]
        size = self.state().cross[trader][m][0]
        if kind == "grow" or size == 0:
            sign = (1 if long else -1) if size == 0 else (1 if size > 0 else -1)
            delta = sign * notional * WAD * WAD // self.price(m)
        else:
            delta = -size if kind == "close" else -(size * pct // 100)
        self._act(f"cross:{kind}", trader, "tradeCross", (m, delta), accounts={trader})

    # ------------------------------------------------------------------ oracle

    @rule(symbol=st.sampled_from(["WETH", "WBTC"]), move=st.integers(-30, 30))
    def move_price(self, symbol: str, move: int) -> None:
        self._move(symbol, move)

    @rule(move=st.integers(-30, 30))  # a second price rule: moves are what make liquidations happen
    def move_eth_price(self, move: int) -> None:
        self._move("WETH", move)

    @rule(minutes=st.integers(1, 55))
    def pass_time(self, minutes: int) -> None:
        """Time passes with the prices held (each feed gets a round at its answer, so none goes stale):
        what moves is funding."""
        for symbol in ("WETH", "WBTC"):
            self._move(symbol, 0, minutes * 60 if symbol == "WETH" else 0)

    @rule(move=st.integers(-12, 12))
    def move_quote_price(self, move: int) -> None:
        """A deployment whose quote has a feed: the quote's price moves (a depeg, or its recovery), kept
        within the feed's bounds ($0.50 to $2). The vault revalues every margin and balance."""
        h = self.h
        if not h.quote_feed:
            return
        answer = h.call1("FEED_USDC", "latestAnswer")
        new = min(max(answer * (100 + move) // 100, 55 * 10**6), 190 * 10**6)
        h.advance(60)
        h.must("FEED_USDC", "updateAnswer", (new,), h.owner)
        STATS["quoteMoves"] += 1
        self.dirty()

    def _move(self, symbol: str, move: int, seconds: int = 60) -> None:
        h = self.h
        answer = h.call1(f"FEED_{symbol}", "latestAnswer")
        h.advance(seconds)
        h.must(f"FEED_{symbol}", "updateAnswer", (max(1, answer * (100 + move) // 100),), h.owner)
        h.must("OracleAdapter", "cacheVolatility", (h.addr[symbol],), h.owner)
        if h.quote_feed:  # the quote's feed gets a round at its answer: time never makes it stale
            quote = h.call1("FEED_USDC", "latestAnswer")
            h.must("FEED_USDC", "updateAnswer", (quote,), h.owner)
        STATS["priceMoves"] += 1
        self.dirty()

    # ------------------------------------------------------------------ properties

    @invariant()
    def properties(self) -> None:
        h, st_ = self.h, self.state()
        errors, self.violations = self.violations, []
        errors += prop.check_conservation(h, st_, BaseMachine.usdc_supply)
        errors += prop.check_open_list(st_)
        self.steps += 1
        errors += prop.check_market_states(h, st_)
        errors += prop.check_health_and_scans(h, st_, h.read_lens(st_))
        for e in errors:
            STATS["violation:" + e.split(":")[0][:40]] += 1
        assert not errors, "\n".join(errors)
