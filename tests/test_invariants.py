"""Stateful property test of the margin protocol: random isolated and cross actions by three traders, price
moves and keeper liquidations; after every step the chain is checked against the reference model
(simulation.margin_math) for conservation, health, scans, isolation and the bad-debt waterfall."""

from __future__ import annotations

from collections import Counter

import ape
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from invariants.harness import USDC_DEC, Harness
from web3.logs import DISCARD

from simulation import margin_math as mm

WAD = 10**18
SETTINGS = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
STATS: Counter = Counter()

actor = st.integers(0, 2)
market = st.integers(0, 1)
usd = st.integers(100, 5000)
pick = st.integers(0, 10**6)
percent = st.integers(1, 100)


class MarginMachine(RuleBasedStateMachine):
    h: Harness  # set by the test before running
    snapshot: str
    usdc_supply: int

    @initialize(deposits=st.lists(st.integers(0, 10_000), min_size=3, max_size=3))
    def reset_chain(self, deposits) -> None:
        h = self.h
        assert h.rpc("evm_revert", [MarginMachine.snapshot]) is True, "evm_revert failed"
        MarginMachine.snapshot = h.rpc("evm_snapshot", [])
        h._vol_cache.clear()  # round ids restart after the revert
        self.isolation_errors: list[str] = []
        STATS["examples"] += 1
        for trader, amount in zip(
            h.traders, deposits, strict=True
        ):  # a cross account to start from
            if amount:
                assert h.send(
                    h.vault.functions.depositCollateral(h.usdc.address, amount * 10**USDC_DEC),
                    trader,
                ).ok

    def has_positions(self) -> bool:
        return self.h.vault.functions.openPositionCount().call() > 0

    # ------------------------------------------------------------------ plumbing

    def _holders(self) -> list[str]:
        h = self.h
        return [h.owner, h.keeper, *h.traders, h.vault.address, h.pool.address, h.insurance.address]

    def _act(self, name: str, sender: str, fn, positions=(), accounts=()):
        """Send `fn`; check every isolated position / cross account not in the touched sets is unchanged."""
        h = self.h
        before_pos = h.open_positions()
        before_acc = {a: h.cross_state(a) for a in h.traders}
        out = h.send(fn, sender)
        STATS["steps"] += 1
        STATS[f"{name}:{'ok' if out.ok else out.error}"] += 1
        after_pos = h.open_positions()
        for pid, p in before_pos.items():
            if pid in positions:
                continue
            q = after_pos.get(pid)
            if q is None:
                self.isolation_errors.append(f"{name}: untouched position {pid} disappeared")
            elif (
                p[:2] + p[3:] != q[:2] + q[3:]
            ):  # openIndex (p[2]) moves on swap-and-pop, by design
                self.isolation_errors.append(f"{name}: untouched position {pid} changed {p} -> {q}")
        for a, s in before_acc.items():
            if a not in accounts and h.cross_state(a) != s:
                self.isolation_errors.append(
                    f"{name}: untouched account {a} changed {s} -> {h.cross_state(a)}"
                )
        return out

    def _some_position(self, i: int, owner: str | None = None):
        ps = self.h.open_positions()
        mine = [pid for pid, p in ps.items() if owner is None or p[0] == owner]
        return (sorted(mine)[i % len(mine)], ps) if mine else (None, ps)

    # ------------------------------------------------------------------ isolated

    @rule(a=actor, m=market, long=st.booleans(), lev=st.integers(1, 19), margin=usd)
    def open_isolated(self, a, m, long, lev, margin):
        h, trader = self.h, self.h.traders[a]
        price = h.price(h.market_asset[m])
        size = margin * 10**18 * lev * WAD // price * (1 if long else -1)
        self._act(
            "openIsolated", trader, h.vault.functions.openIsolated(m, size, margin * 10**USDC_DEC)
        )

    @precondition(has_positions)
    @rule(a=actor, i=pick, amount=usd)
    def add_margin(self, a, i, amount):
        pid, _ = self._some_position(i)
        if pid is not None:  # anyone may add margin
            fn = self.h.vault.functions.addIsolatedMargin(pid, amount * 10**USDC_DEC)
            self._act("addMargin", self.h.traders[a], fn, positions={pid})

    @precondition(has_positions)
    @rule(a=actor, i=pick, pct=percent)
    def remove_margin(self, a, i, pct):
        trader = self.h.traders[a]
        pid, ps = self._some_position(i, trader)
        if pid is not None:
            amount = max(1, ps[pid][4] * pct // 100)
            self._act(
                "removeMargin",
                trader,
                self.h.vault.functions.removeIsolatedMargin(pid, amount),
                positions={pid},
            )

    @precondition(has_positions)
    @rule(a=actor, i=pick, grow=st.booleans(), pct=st.integers(1, 150))
    def modify_isolated(self, a, i, grow, pct):
        trader = self.h.traders[a]
        pid, ps = self._some_position(i, trader)
        if pid is not None:
            size = ps[pid][3]
            delta = size * pct // 100 if grow else -(size * min(pct, 100) // 100)
            fn = self.h.vault.functions.modifyIsolated(pid, delta)
            self._act("growIsolated" if grow else "reduceIsolated", trader, fn, positions={pid})

    @precondition(has_positions)
    @rule(a=actor, i=pick)
    def close_isolated(self, a, i):
        trader = self.h.traders[a]
        pid, _ = self._some_position(i, trader)
        if pid is not None:
            self._act(
                "closeIsolated", trader, self.h.vault.functions.closeIsolated(pid), positions={pid}
            )

    # ------------------------------------------------------------------ cross

    @rule(a=actor, token=st.sampled_from(["USDC", "WETH", "WBTC"]), amount=st.integers(100, 20_000))
    def deposit(self, a, token, amount):
        h, trader = self.h, self.h.traders[a]
        t = h.tokens[token]
        raw = (
            amount * 10**6
            if token == "USDC"
            else amount * WAD * 10 ** t.functions.decimals().call() // h.price(t.address)
        )
        self._act(
            f"deposit{token}",
            trader,
            h.vault.functions.depositCollateral(t.address, raw),
            accounts={trader},
        )

    @rule(a=actor, token=st.sampled_from(["USDC", "WETH", "WBTC"]), pct=percent)
    def withdraw(self, a, token, pct):
        h, trader = self.h, self.h.traders[a]
        bal = h.coll(trader, token)
        if bal:
            fn = h.vault.functions.withdrawCollateral(
                h.tokens[token].address, max(1, bal * pct // 100)
            )
            self._act(f"withdraw{token}", trader, fn, accounts={trader})

    @rule(
        a=actor,
        m=market,
        kind=st.sampled_from(["grow", "reduce", "close"]),
        long=st.booleans(),
        notional=st.integers(100, 50_000),
        pct=st.integers(1, 99),
    )
    def trade_cross(self, a, m, kind, long, notional, pct):
        h, trader = self.h, self.h.traders[a]
        size = h.vault.functions.crossPosition(trader, m).call()[0]
        if kind == "grow" or size == 0:
            sign = (1 if long else -1) if size == 0 else (1 if size > 0 else -1)
            delta = sign * notional * WAD * WAD // h.price(h.market_asset[m])
        else:
            delta = -size if kind == "close" else -(size * pct // 100)
        self._act(
            f"cross:{kind}", trader, h.vault.functions.tradeCross(m, delta), accounts={trader}
        )

    # ------------------------------------------------------------------ oracle

    @rule(symbol=st.sampled_from(["WETH", "WBTC"]), move=st.integers(-30, 30))
    def move_price(self, symbol, move):
        self._move(symbol, move)

    @rule(move=st.integers(-30, 30))  # a second price rule: moves are what make liquidations happen
    def move_eth_price(self, move):
        self._move("WETH", move)

    def _move(self, symbol, move):
        h = self.h
        feed = h.feeds[symbol]
        answer = feed.functions.latestAnswer().call()
        h.rpc("evm_increaseTime", [60])
        assert h.send(feed.functions.updateAnswer(max(1, answer * (100 + move) // 100)), h.owner).ok
        assert h.send(h.oracle.functions.cacheVolatility(h.tokens[symbol].address), h.owner).ok
        STATS["priceMoves"] += 1

    @rule(
        a=actor,
        m=market,
        long=st.booleans(),
        margin=usd,
        cross=st.booleans(),
        move=st.integers(10, 35),
    )
    def leveraged_then_crash(self, a, m, long, margin, cross, move):
        """Open a position at 90 % of the leverage the initial requirement allows (buffer included), on
        the margin (isolated) or on the account's free equity (cross), then move its market 10-35 %
        against it and have the keeper try it: liquidation is certain, bad debt likely."""
        h, trader = self.h, self.h.traders[a]
        states = h.states()
        price, initial_ratio, _ = states[m]
        lev_wad = 9 * WAD // 10 * WAD // initial_ratio
        if cross:
            existing = h.vault.functions.crossPosition(trader, m).call()[0]
            long = existing > 0 if existing else long  # never flip an open position
            deposit = h.vault.functions.depositCollateral(h.usdc.address, margin * 10**USDC_DEC)
            self._act("deposit", trader, deposit, accounts={trader})
            health = h.model_account_health(trader, states)
            free = health.equity_usd - health.initial_usd
            if free <= 0:
                return
            size = free * lev_wad // price * (1 if long else -1)
            opened = self._act(
                "cross:crash", trader, h.vault.functions.tradeCross(m, size), accounts={trader}
            )
        else:
            size = margin * WAD * lev_wad // price * (1 if long else -1)
            call = h.vault.functions.openIsolated(m, size, margin * 10**USDC_DEC)
            opened = self._act("openIsolated:crash", trader, call)
        if not opened.ok:
            return
        self._move("WETH" if m == 0 else "WBTC", -move if long else move)
        if cross:
            self.liquidate_cross(a, False)
        else:
            pid = h.vault.functions.nextPositionId().call() - 1
            self._liquidate_one(pid, False)

    # ------------------------------------------------------------------ liquidation

    @precondition(has_positions)
    @rule(i=pick, by_owner=st.sampled_from([False, False, False, True]))
    def liquidate_isolated(self, i, by_owner):
        h = self.h
        pid, ps = self._some_position(i)
        states = h.states()
        risky = sorted(q for q, p in ps.items() if h.model_isolated_health(p, states).liquidatable)
        if risky and i % 2:  # half the time aim at a position the model says is liquidatable
            pid = risky[i % len(risky)]
        self._liquidate_one(pid, by_owner)

    def _liquidate_one(self, pid, by_owner):
        h = self.h
        p = h.open_positions()[pid]
        predicted = h.model_isolated_health(p, h.states()).liquidatable
        liquidator = p[0] if by_owner else h.keeper
        out = self._liquidate(
            "liquidateIsolated", liquidator, h.vault.functions.liquidateIsolated(pid), {pid}, ()
        )
        self._check_liquidation_outcome(out, predicted, by_owner, f"isolated position {pid} {p}")
        if out.ok:
            self._check_bad_debt(out, isolated=pid)

    @rule(a=actor, by_owner=st.sampled_from([False, False, False, True]))
    def liquidate_cross(self, a, by_owner):
        h, account = self.h, self.h.traders[a]
        predicted = h.model_account_health(account, h.states()).liquidatable
        liquidator = account if by_owner else h.keeper
        out = self._liquidate(
            "liquidateCross", liquidator, h.vault.functions.liquidateCross(account), (), {account}
        )
        self._check_liquidation_outcome(out, predicted, by_owner, f"cross account {account}")
        if out.ok:
            self._check_bad_debt(out, account=account)

    def _liquidate(self, name, liquidator, fn, positions, accounts):
        h = self.h
        self._pool_before = h.balance("USDC", h.pool.address)
        self._insurance_before = h.balance("USDC", h.insurance.address)
        return self._act(name, liquidator, fn, positions=positions, accounts=accounts)

    def _check_liquidation_outcome(self, out, predicted, by_owner, what):
        if by_owner:
            assert not out.ok and out.error == "SelfLiquidation", (
                f"self-liquidation of {what}: {out.error}"
            )
        elif predicted:
            assert out.ok, (
                f"{what} is liquidatable by the model but liquidation reverted with {out.error}"
            )
        else:
            assert not out.ok and out.error == "NotLiquidatable", (
                f"{what} is healthy by the model but liquidation {'succeeded' if out.ok else out.error}"
            )

    def _check_bad_debt(self, out, isolated=None, account=None):
        h, v = self.h, self.h.vault
        ev = (
            v.events.IsolatedLiquidated if isolated else v.events.CrossLiquidated
        )().process_receipt(out.receipt, errors=DISCARD)
        assert len(ev) == 1
        from_pool = 0
        for bd in v.events.BadDebtCovered().process_receipt(out.receipt, errors=DISCARD):
            a = bd["args"]
            STATS["badDebtEvents"] += 1
            assert a["badDebt"] == a["fromInsurance"] + a["fromPool"], f"bad debt split {a}"
            assert a["fromInsurance"] <= self._insurance_before, (
                f"insurance paid more than it held: {a}"
            )
            from_pool += a["fromPool"]
            if isolated:
                assert a["isolated"] and a["subject"] == isolated
                assert v.functions.position(isolated).call()[0] == "0x" + "0" * 40, (
                    "bad-debt position still open"
                )
            else:
                assert not a["isolated"] and a["subject"] == int(account, 16)
                left = {t: h.coll(account, t) for t in ("WETH", "WBTC")}
                assert not any(left.values()), f"bad debt covered while collateral remains: {left}"
        pnl = ev[0]["args"]["realizedPnl"]
        pool_delta = h.balance("USDC", h.pool.address) - self._pool_before
        assert pool_delta == -pnl - from_pool, (
            f"pool cash moved {pool_delta}, expected {-pnl - from_pool} (pnl {pnl})"
        )

    # ------------------------------------------------------------------ invariants

    @invariant()
    def conservation(self) -> None:
        h = self.h
        ps = h.open_positions()
        usdc_books = sum(p[4] for p in ps.values()) + sum(h.coll(a, "USDC") for a in h.traders)
        errors = []
        if (bal := h.balance("USDC", h.vault.address)) != usdc_books:
            errors.append(
                f"vault USDC {bal} != isolated margins + cross USDC {usdc_books} (diff {bal - usdc_books})"
            )
        for token in ("WETH", "WBTC"):
            books = sum(h.coll(a, token) for a in h.traders)
            if (bal := h.balance(token, h.vault.address)) != books:
                errors.append(f"vault {token} {bal} != cross balances {books}")
        total = sum(h.balance("USDC", x) for x in self._holders())
        if total != MarginMachine.usdc_supply:
            errors.append(f"USDC across holders {total} != minted {MarginMachine.usdc_supply}")
        assert not errors, "\n".join(errors)

    @invariant()
    def market_state_matches_model(self) -> None:
        h, errors = self.h, []
        for m in range(h.n_markets):
            chain = tuple(h.vault.functions.marketState(m).call())
            if chain != h.model_market_state(m):
                errors.append(f"market {m}: marketState {chain} != model {h.model_market_state(m)}")
        for symbol in ("WETH", "WBTC"):
            vol = h.oracle.functions.hourlyVolatilityWad(h.tokens[symbol].address).call()
            if vol != h.model_volatility(symbol):
                errors.append(
                    f"{symbol}: hourlyVolatilityWad {vol} != model {h.model_volatility(symbol)}"
                )
        assert not errors, "\n".join(errors)

    @invariant()
    def health_and_scans_match_model(self) -> None:
        h, errors = self.h, []
        states = h.states()
        ps = h.open_positions()
        model_iso = set()
        for pid, p in ps.items():
            model = h.model_isolated_health(p, states)
            chain = mm.Health(*h.lens.functions.isolatedHealth(pid).call())
            if chain != model:
                errors.append(f"position {pid}: isolatedHealth {chain} != model {model}")
            if model.liquidatable:
                model_iso.add(pid)
        scan_iso, scanned = h.lens.functions.scanIsolated(0, len(ps) + 5).call()
        if set(scan_iso) != model_iso or scanned != len(ps):
            errors.append(
                f"scanIsolated {scan_iso} ({scanned} scanned) != model {sorted(model_iso)} of {len(ps)}"
            )
        model_cross, with_positions = set(), set()
        for a in h.traders:
            model = h.model_account_health(a, states)
            chain = mm.Health(*h.lens.functions.accountHealth(a).call())
            if chain != model:
                errors.append(f"account {a}: accountHealth {chain} != model {model}")
            if any(h.vault.functions.crossPosition(a, m).call()[0] for m in range(h.n_markets)):
                with_positions.add(a)
                if model.liquidatable:
                    model_cross.add(a)
        listed = h.vault.functions.crossAccounts(0, 10).call()
        if set(listed) != with_positions or len(listed) != len(with_positions):
            errors.append(
                f"crossAccounts {listed} != accounts with positions {sorted(with_positions)}"
            )
        scan_cross, _ = h.lens.functions.scanCross(0, 10).call()
        if set(scan_cross) != model_cross:
            errors.append(f"scanCross {scan_cross} != model {sorted(model_cross)}")
        assert not errors, "\n".join(errors)

    @invariant()
    def open_list_consistent(self) -> None:
        bad = [
            (pid, p[2], i)
            for i, (pid, p) in enumerate(self.h.open_positions().items())
            if p[2] != i
        ]
        assert not bad, f"openIndex out of step with the open list (id, openIndex, slot): {bad}"

    @invariant()
    def isolation(self) -> None:
        errors, self.isolation_errors = self.isolation_errors, []
        assert not errors, "\n".join(errors)


def test_margin_invariants(system, owner, alice, bob, carol, keeper):
    w3 = ape.chain.provider.web3
    traders = [alice.address, bob.address, carol.address]
    h = Harness(system, w3, owner.address, traders, keeper.address)
    for who, amounts in [
        *((t, {"USDC": 1_000_000, "WETH": 200, "WBTC": 10}) for t in traders),
        (keeper.address, {"USDC": 50_000_000}),
    ]:
        for symbol, whole in amounts.items():
            token = h.tokens[symbol]
            raw = whole * 10 ** token.functions.decimals().call()
            assert h.send(token.functions.mint(who, raw), owner.address).ok
            assert h.send(token.functions.approve(h.vault.address, 2**256 - 1), who).ok
    MarginMachine.h = h
    MarginMachine.usdc_supply = h.usdc.functions.totalSupply().call()
    MarginMachine.snapshot = h.rpc("evm_snapshot", [])
    STATS.clear()
    run_state_machine_as_test(MarginMachine, settings=SETTINGS)
    print("\ninvariant run:", dict(sorted(STATS.items())))
    # The paths the invariants exist for must have run, not only been attempted.
    for path in ("liquidateIsolated:ok", "liquidateCross:ok", "badDebtEvents"):
        assert STATS[path] > 0, f"the run never exercised {path}: {dict(STATS)}"
