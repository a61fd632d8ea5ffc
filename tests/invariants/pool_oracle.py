"""The invariant suite's LP and oracle-failure handlers: LPs deposit, exit in two steps, and try to leave in
the block they came (around someone else's trade, against the counterfactual of that trade alone); a
collateral feed goes stale while the other market moves. Properties in properties.py."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from . import properties as prop
from .harness import ASSETS, USDC_DEC
from .machine import STATS, WAD, actor, market
from .risk import MarginMachine

lp_actor = st.integers(0, 1)


class FullMachine(MarginMachine):
    # ------------------------------------------------------------------ LPs

    def _lp_values(self, holders: list[str], capped: bool = True) -> list[int]:
        """Each holder's shares at their value, and its pending exit at what its claim would pay now
        (`capped`), or at the escrowed shares' value (what they earn the pool, whoever keeps it)."""
        h = self.h
        held = h.calls([("LPPool", "balanceOf", x) for x in holders])
        exits = h.calls([("LPPool", "pendingExit", x) for x in holders])
        values = h.calls(
            [("LPPool", "convertToAssets", n) for n in held]
            + [("LPPool", "convertToAssets", e[0]) for e in exits]
        )
        k = len(holders)
        if not capped:
            return [values[i] + values[k + i] for i in range(k)]
        return [values[i] + min(exits[i][2], values[k + i]) for i in range(k)]

    @rule(lp=lp_actor, amount=st.integers(1_000, 5_000_000))
    def lp_deposit(self, lp: int, amount: int) -> None:
        h, who = self.h, self.h.lps[lp]
        out = h.send("LPPool", "deposit", (amount * 10**USDC_DEC, who), who)
        STATS[f"lpDeposit:{'ok' if out.ok else out.error}"] += 1
        STATS["lpCalls"] += 1
        self.dirty()

    @rule(lp=lp_actor, pct=st.integers(1, 100))
    def lp_exit(self, lp: int, pct: int) -> None:
        """An LP claims its pending exit (at its ready time, if that is still to come), or asks to exit
        with some of its unlocked shares."""
        h, who = self.h, self.h.lps[lp]
        others = [x for x in (h.owner, *h.lps) if x != who]
        held, requestable, pending = h.calls(
            [
                ("LPPool", "balanceOf", who),
                ("LPPool", "maxRequestRedeem", who),
                ("LPPool", "pendingExit", who),
            ]
        )
        if pending[0]:  # the LP waits out the delay (if it has not passed), then claims
            latest = int(h.rpc1("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
            if pending[1] > latest:  # an empty block at the ready time: the reads below see it
                h.rpc1("evm_mine", [pending[1]])
            step, args = "claim", (who,)
            cap = min(pending[2], h.call1("LPPool", "convertToAssets", pending[0]))
        else:
            step, args, cap = "request", (min(requestable, held * pct // 100),), 0
            if args[0] == 0:
                STATS["lpExit:locked"] += 1
                return
        cash = h.call1("USDC", "balanceOf", who)
        before = sum(self._lp_values(others))
        with h.frozen_time():  # in the block of the reads: no funding accrues in between
            out = h.send("LPPool", f"{step}Redeem", args, who)
        STATS[f"lpExit:{step}:{'ok' if out.ok else out.error}"] += 1
        STATS["lpCalls"] += 1
        self.dirty()
        paid = h.call1("USDC", "balanceOf", who) - cash
        self.violations += prop.check_lp_exit(step, paid, cap, before, sum(self._lp_values(others)))

    @rule(
        lp=lp_actor,
        amount=st.integers(10_000, 50_000_000),
        a=actor,
        m=market,
        long=st.booleans(),
        notional=st.integers(0, 3_000_000),
    )
    def lp_round_trip(
        self, lp: int, amount: int, a: int, m: int, long: bool, notional: int
    ) -> None:
        """Deposit, someone else's trade (none when notional is 0), exit with everything at once (request
        and claim; with the defences on, the shares are locked and the claim is not ready)."""
        h, who, trader = self.h, self.h.lps[lp], self.h.traders[a]
        others = [x for x in (h.owner, *h.lps) if x != who]
        margin = max(notional // 10, 100) * 10**USDC_DEC
        size = notional * WAD * WAD // self.price(m) * (1 if long else -1)
        trade = ("MarginVault", "openIsolated", (m, size, margin), trader)

        with h.frozen_time():  # the whole round trip, and its counterfactual, in one instant
            snap = h.snapshot()
            cf_ok = h.send(*trade).ok if notional else True
            # The pool's earnings are shared by every share, escrowed ones included (what an exit's cap
            # leaves of theirs goes to the LPs who stay): the round trip counts them uncapped.
            others_cf = sum(self._lp_values(others, capped=False))
            h.revert(snap)

            before = self._lp_values([*others, who], capped=False)
            deposit = amount * 10**USDC_DEC
            if not h.send("LPPool", "deposit", (deposit, who), who).ok:
                STATS["lpRoundTrip:depositReverted"] += 1
                self.dirty()
                return
            held, supply, pending = h.calls(
                [
                    ("LPPool", "balanceOf", who),
                    ("LPPool", "totalSupply"),
                    ("LPPool", "pendingExit", who),
                ]
            )
            ok = h.send(*trade).ok if notional else True
            cash_before = h.call1("USDC", "balanceOf", who)
            request = h.send("LPPool", "requestRedeem", (held,), who)
            claim = h.send("LPPool", "claimRedeem", (who,), who)
            redeemed = h.call1("USDC", "balanceOf", who) - cash_before
            after = self._lp_values([*others, who], capped=False)
        for step, out in (("request", request), ("claim", claim)):
            STATS[f"lpRoundTrip:{step}:{'ok' if out.ok else out.error}"] += 1
        STATS["lpCalls"] += 4 if notional else 3
        self.dirty()
        if ok != cf_ok:
            self.violations.append(
                f"a deposit of {deposit} changed whether a trade of {notional} USD went through"
            )
            return
        self.violations += prop.check_lp_round_trip(
            prop.LpRoundTrip(
                deposit=deposit + before[-1],  # its earlier shares count as put in at their value
                redeemed=redeemed,
                still_held=after[-1],
                share_wad=(held + pending[0]) * WAD // supply,  # an earlier exit's shares earn too
                others_before=sum(before[:-1]),
                others_after=sum(after[:-1]),
                others_counterfactual=others_cf,
            )
        )

    # ------------------------------------------------------------------ stale feeds

    @rule(
        a=actor,
        stale=st.sampled_from(ASSETS),
        dust=st.booleans(),
        margin=st.integers(200, 5000),
        long=st.booleans(),
        move=st.integers(5, 30),
    )
    def stale_collateral_feed(
        self, a: int, stale: str, dust: bool, margin: int, long: bool, move: int
    ) -> None:
        """A trader holding `stale` as collateral trades the other market near its leverage limit; then
        `stale`'s feed misses its heartbeat (every other feed gets a round) while that market moves against
        the trader. Every account the model finds liquidatable must be liquidatable, and the lens's scans
        must answer."""
        h, trader = self.h, self.h.traders[a]
        m = next(i for i in range(h.n_markets) if h.market_symbol[i] != stale)
        price = self.state().prices[stale]
        if price is None:
            return
        raw = 1 if dust else margin * WAD * 10 ** h.decimals[stale] // price
        h.must(stale, "mint", (trader, raw), h.owner)
        h.must(stale, "approve", (h.vault_address, 2**256 - 1), trader)
        self._act(
            f"deposit{stale}", trader, "depositCollateral", (h.addr[stale], raw), accounts={trader}
        )
        side = self._open_levered(trader, m, long, margin, True)
        heartbeat = h.call1("OracleAdapter", "feedConfig", h.addr[stale])[1]
        h.advance(heartbeat + 1)
        for symbol in ASSETS:
            if symbol != stale:  # every other feed gets its round: the market's with the move
                self._move(symbol, (-move if side else move) if side is not None else 0, seconds=0)
        STATS[f"stale:{stale}"] += 1
        s = self.state()
        assert s.prices[stale] is None, f"{stale} should be stale"
        states = h.states(s)
        liquidatable = set()
        for t in h.traders:
            health = h.model_account_health(s, t, states)
            if (
                health is not None
                and health.liquidatable
                and any(s.cross[t][i][0] for i in range(h.n_markets))
            ):
                liquidatable.add(t)
        lens = h.read_lens(s)
        scans_answered = lens["scanIsolated"] is not None and lens["scanCross"] is not None
        scan = {h.ck(x) for x in lens["scanCross"][0]} if lens["scanCross"] else None
        outcomes = {}
        for t in sorted(liquidatable):
            out = self._liquidate(h.keeper, "liquidateCross", (t,), (), {t})
            outcomes[t] = None if out.ok else out.error
            STATS["staleLiquidation:" + ("ok" if out.ok else str(out.error))] += 1
        self.violations += prop.check_stale_feed_liquidation(
            stale, liquidatable, outcomes, scan, scans_answered
        )
        self._move(stale, 0, seconds=0)  # the feed comes back
