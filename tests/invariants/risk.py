"""The invariant suite's risk handlers: liquidations (each compared with the owner's own close from the same
state), leveraged positions crashed into liquidation, LP deposits and same-block round trips, and stale
collateral feeds. Properties in properties.py."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from simulation import margin_math as mm

from . import properties as prop
from .harness import ASSETS, TOKENS, USDC_DEC, ChainState
from .machine import STATS, WAD, BaseMachine, actor, market, pick, usd

TOP_UP = (
    10**9 * 10**USDC_DEC
)  # quote units minted to an owner to close its cross positions in a what-if


class MarginMachine(BaseMachine):
    # ------------------------------------------------------------------ liquidation

    @precondition(BaseMachine.has_positions)
    @rule(i=pick, by_owner=st.sampled_from([False, False, False, True]))
    def liquidate_isolated(self, i: int, by_owner: bool) -> None:
        h, s = self.h, self.state()
        pid = self._some_position(i)
        states = h.states(s)
        risky = sorted(
            q
            for q, p in s.positions.items()
            if (x := h.model_isolated_health(p, states)) and x.liquidatable
        )
        if risky and i % 2:  # half the time aim at a position the model says is liquidatable
            pid = risky[i % len(risky)]
        if pid is not None:
            self._liquidate_one(pid, by_owner)

    def _liquidate_one(self, pid: int, by_owner: bool) -> None:
        h, s = self.h, self.state()
        p = s.positions[pid]
        health = h.model_isolated_health(p, h.states(s))
        predicted = health is not None and health.liquidatable
        if predicted and not by_owner:
            self._compare_isolated_with_close(pid, p[0])
        liquidator = p[0] if by_owner else h.keeper
        out = self._liquidate(liquidator, "liquidateIsolated", (pid,), {pid}, ())
        self._check_liquidation_outcome(out, predicted, by_owner, f"isolated position {pid} {p}")
        if out.ok:
            self._check_bad_debt(out, isolated=pid)

    def _compare_isolated_with_close(self, pid: int, owner: str) -> None:
        """What-if, on snapshots: the keeper's liquidation, then the owner's close of the same size."""
        h = self.h
        with h.frozen_time():  # both what-ifs at the same instant: the same funding
            snap = h.snapshot()
            liq = h.send("MarginVault", "liquidateIsolated", (pid,), h.keeper)
            h.revert(snap)
            if not liq.ok:
                return
            ev = liq.events("IsolatedLiquidated")[0]
            snap = h.snapshot()
            if ev["full"]:
                close = h.send("MarginVault", "closeIsolated", (pid,), owner)
                paid = close.events("IsolatedClosed")[0]["payout"] if close.ok else None
            else:
                close = h.send("MarginVault", "modifyIsolated", (pid, -ev["closedSize"]), owner)
                paid = close.events("IsolatedModified")[0]["margin"] if close.ok else None
            h.revert(snap)
        if not close.ok and close.error != "Underwater":
            STATS[f"closeWhatIf:{close.error}"] += 1
            return
        STATS["liquidationVsClose:isolated"] += 1
        self.violations += prop.check_liquidation_vs_close(
            prop.LiquidationVsClose(
                f"isolated position {pid}",
                ev["remaining"] + ev["keeperReward"],
                paid,
                ev["remaining"],
            )
        )

    @rule(a=actor, by_owner=st.sampled_from([False, False, False, True]))
    def liquidate_cross(self, a: int, by_owner: bool) -> None:
        h, account = self.h, self.h.traders[a]
        s = self.state()
        health = h.model_account_health(s, account, h.states(s))
        predicted = health is not None and health.liquidatable
        if predicted and not by_owner:
            self._compare_cross_with_close(account)
        liquidator = account if by_owner else h.keeper
        out = self._liquidate(liquidator, "liquidateCross", (account,), (), {account})
        if health is None:
            return  # a market it trades has no price: nothing to predict
        self._check_liquidation_outcome(out, predicted, by_owner, f"cross account {account}")
        if out.ok:
            self._check_bad_debt(out, account=account)

    def _owner_side(self, s: ChainState, account: str, pre: ChainState) -> int:
        """The account's value (quote + collateral at oracle prices) plus what its second address, the
        keeper, gained since `pre`, quote units at `pre`'s prices."""
        h = self.h
        value = sum(h.value_quote(pre, t, h.coll(s, account, t)) for t in TOKENS)
        for t in TOKENS:
            delta = s.balances[t, h.keeper] - pre.balances[t, h.keeper]
            value += h.value_quote(pre, t, delta) if delta >= 0 else -h.value_quote(pre, t, -delta)
        return value

    def _compare_cross_with_close(self, account: str) -> None:
        h, pre = self.h, self.state()
        with h.frozen_time():  # both what-ifs at the same instant: the same funding
            snap = h.snapshot()
            liq = h.send("MarginVault", "liquidateCross", (account,), h.keeper)
            after = h.read() if liq.ok else pre
            h.revert(snap)
            if not liq.ok:
                return
            ev = liq.events("CrossLiquidated")[0]
            owner_side = self._owner_side(after, account, pre)
            snap = h.snapshot()
            h.must("USDC", "mint", (account, TOP_UP), h.owner)
            h.must("MarginVault", "depositCollateral", (h.addr["USDC"], TOP_UP), account)
            closes = [
                h.send("MarginVault", "tradeCross", (c["marketId"], -c["closedSize"]), account)
                for c in liq.events("CrossPositionLiquidated")
            ]
            closed = h.read()
            h.revert(snap)
        if not all(c.ok for c in closes):
            STATS[f"closeWhatIf:{[c.error for c in closes]}"] += 1
            return
        by_closing = self._owner_side(closed, account, pre) - TOP_UP
        STATS["liquidationVsClose:cross"] += 1
        self.violations += prop.check_liquidation_vs_close(
            prop.LiquidationVsClose(
                f"cross account {account}",
                owner_side,
                by_closing if by_closing >= 0 else None,
                ev["remainingQuote"],
                prop.CROSS_VALUATION_TOLERANCE_QUOTE,
            )
        )

    def _liquidate(self, liquidator: str, fn: str, args: tuple, positions: Any, accounts: Any):
        s, h = self.state(), self.h
        self._pool_before = s.balances["USDC", h.addr["LPPool"]]
        self._insurance_before = s.balances["USDC", h.addr["InsuranceFund"]]
        self._rooms_before = h.calls(
            [("MarginVault", "poolLossRoom", m) for m in range(h.n_markets)]
        )
        self._day_before = s.timestamp // 86_400
        # in the instant of those reads: a pool deposit maturing a second later (its cooldown over) would
        # raise the trading liquidity, and the cap's room with it, between the read and the liquidation
        with h.frozen_time():
            return self._act(fn, liquidator, fn, args, positions=positions, accounts=accounts)

    def _check_liquidation_outcome(
        self, out: Any, predicted: bool, by_owner: bool, what: str
    ) -> None:
        if by_owner:
            ok = not out.ok and out.error == "SelfLiquidation"
            msg = f"self-liquidation of {what}: {out.error}"
        elif predicted:
            ok, msg = (
                out.ok,
                f"{what} is liquidatable by the model but liquidation reverted with {out.error}",
            )
        else:
            ok = not out.ok and out.error == "NotLiquidatable"
            msg = f"{what} is healthy by the model but liquidation {'succeeded' if out.ok else out.error}"
        if not ok:
            self.violations.append(msg)

    def _cut_to_cap(self, liquidated: dict, left: tuple) -> bool:
        """A position may stay open after its liquidation booked bad debt only when the liquidation was
        cut to its market's per-block cap (the rest goes in a later block) and left it no margin."""
        market_id, margin = left[1], left[4]
        cap = self.h.params[market_id][13]
        closed_usd = abs(liquidated["closedSize"]) * liquidated["priceWad"] // WAD
        return cap > 0 and closed_usd >= cap - 10**6 and margin == 0

    def _check_bad_debt(
        self, out: Any, isolated: int | None = None, account: str | None = None
    ) -> None:
        h, s, errors = self.h, self.state(), self.violations
        ev = out.events("IsolatedLiquidated" if isolated else "CrossLiquidated")
        assert len(ev) == 1
        from_pool = 0
        for a in out.events("BadDebtCovered"):
            STATS["badDebtEvents"] += 1
            if a["badDebt"] != a["fromInsurance"] + a["fromPool"] + a["toDeleverage"]:
                errors.append(f"bad debt split {a}")
            if a["fromInsurance"] > self._insurance_before:
                errors.append(f"insurance paid more than it held: {a}")
            from_pool += a["fromPool"] + a["toDeleverage"]  # the pool is not paid the deficit now
            room = self._rooms_before[a["marketId"]]
            if s.timestamp // 86_400 == self._day_before and (
                a["fromPool"] > room or (a["toDeleverage"] > 0 and a["fromPool"] != room)
            ):  # the pool takes bad debt up to its room today, and all of it before deleveraging
                errors.append(f"pool loss cap: room {room} before, {a}")
            if a["toDeleverage"]:
                STATS["deficitsQueued"] += 1
            if isolated and (
                not a["isolated"]
                or a["subject"] != isolated
                or (isolated in s.positions and not self._cut_to_cap(ev[0], s.positions[isolated]))
            ):
                errors.append(
                    f"bad debt of position {isolated}: {a}, still open {isolated in s.positions}"
                )
            if account:
                left = {t: h.coll(s, account, t) for t in ASSETS}
                if a["isolated"] or a["subject"] != int(account, 16) or any(left.values()):
                    errors.append(f"bad debt covered while collateral remains: {a} {left}")
        pnl = ev[0]["realizedPnl"]
        pool_delta = s.balances["USDC", h.addr["LPPool"]] - self._pool_before
        if pool_delta != -pnl - from_pool:
            errors.append(f"pool cash moved {pool_delta}, expected {-pnl - from_pool} (pnl {pnl})")

    # ------------------------------------------------------------------ auto-deleveraging

    @rule(i=pick)
    def deleverage(self, i: int) -> None:
        """Deleverage a position on a side that owes a deficit (profitable or not: the vault must refuse
        the latter); its closed part's profit pays the deficit, no more than the deficit and no more than
        that profit, and the vault's books stay whole (check_conservation, after every step)."""
        h, s = self.h, self.state()
        owing = sorted(side for side, owed in s.deficits.items() if owed > 0)
        if not owing:
            STATS["deleverage:noDeficit"] += 1
            return
        m, long = owing[i % len(owing)]
        iso = [("iso", pid, p[3], p[5]) for pid, p in s.positions.items() if p[1] == m]
        cross = [("cross", a, *s.cross[a][m][:2]) for a in h.traders if s.cross[a][m][0]]
        cands = [c for c in iso + cross if (c[2] > 0) == long]
        state = h.model_market_state(s, m)
        if not cands or state is None:
            STATS["deleverage:noCandidate"] += 1
            return
        kind, key, size, entry = cands[i % len(cands)]
        profit = mm.pnl_usd_floor(size, entry, state[0])
        deficit = s.deficits[m, long]
        if kind == "iso":
            out = self._act(
                "deleverage:iso", h.keeper, "deleverageIsolated", (key,), positions={key}
            )
        else:
            out = self._act(
                "deleverage:cross", h.keeper, "deleverageCross", (key, m), accounts={key}
            )
        after = self.state()
        if profit <= 0:
            if out.ok or out.error != "NotProfitable":
                self.violations.append(
                    f"deleveraging {kind} {key} at a profit of {profit}: {out.error}"
                )
            return
        if not out.ok:
            if out.error not in (
                "Underwater",
                "InsufficientQuote",
            ):  # funding owed beyond its margin
                self.violations.append(
                    f"deleveraging {kind} {key} (profit {profit}) reverted: {out.error}"
                )
            return
        ev = out.events("Deleveraged")[0]
        closed = mm.pnl_usd_floor(ev["closedSize"], entry, state[0])
        if ev["haircut"] > min(
            deficit, mm.usd_to_quote_down(max(closed, 0), USDC_DEC, s.quote_price)
        ):
            self.violations.append(
                f"haircut {ev['haircut']} beyond deficit {deficit} or profit {closed}"
            )
        if after.deficits[m, long] != deficit - ev["haircut"]:
            self.violations.append(f"deficit {deficit} -> {after.deficits[m, long]}, haircut {ev}")
        # a partial close pays all the deficit (but a unit its profit's rounding down may leave)
        if ev["haircut"] + 1 < deficit and ev["closedSize"] != size:
            self.violations.append(
                f"partial deleverage left {deficit - ev['haircut']} of the deficit"
            )

    @rule(
        a=actor,
        m=market,
        long=st.booleans(),
        margin=usd,
        cross=st.booleans(),
        move=st.integers(10, 35),
    )
    def leveraged_then_crash(
        self, a: int, m: int, long: bool, margin: int, cross: bool, move: int
    ) -> None:
        """Open a position at 90 % of the leverage the initial requirement allows (buffer included), on
        the margin (isolated) or on the account's free equity (cross), then move its market 10-35 %
        against it and have the keeper try it: liquidation is certain, bad debt likely."""
        h, trader = self.h, self.h.traders[a]
        opened = self._open_levered(trader, m, long, margin, cross)
        if opened is None:
            return
        self._move(h.market_symbol[m], -move if opened else move)
        if cross:
            self.liquidate_cross(a, False)
        else:
            pid = max(p for p, q in self.state().positions.items() if q[0] == trader)
            self._liquidate_one(pid, False)

    def _open_levered(
        self, trader: str, m: int, long: bool, margin: int, cross: bool
    ) -> bool | None:
        """Open near the most leverage allowed; the side opened (True long), None if it did not open."""
        h = self.h
        state = h.states(self.state())[m]
        if state is None:
            return None
        price, initial_ratio = state[:2]
        lev_wad = 9 * WAD // 10 * WAD // initial_ratio
        if cross:
            existing = self.state().cross[trader][m][0]
            long = existing > 0 if existing else long  # never flip an open position
            args = (h.addr["USDC"], margin * 10**USDC_DEC)
            self._act("deposit", trader, "depositCollateral", args, accounts={trader})
            health = h.model_account_health(self.state(), trader, h.states(self.state()))
            if health is None or health.equity_usd <= health.initial_usd:
                return None
            size = (health.equity_usd - health.initial_usd) * lev_wad // price * (1 if long else -1)
            out = self._act("cross:crash", trader, "tradeCross", (m, size), accounts={trader})
        else:
            size = margin * WAD * lev_wad // price * (1 if long else -1)
            out = self._act(
                "openIsolated:crash", trader, "openIsolated", (m, size, margin * 10**USDC_DEC)
            )
        return long if out.ok else None
