"""Adversaries: agents that try every block to extract value from the protocol. Each decides from the frozen
snapshot (and the market price history, as the oracle agent sees it) and returns transactions; what each
earns is measured apart, in simulation.adversary_pnl."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from simulation.actions import (
    Action,
    CloseIsolated,
    Deposit,
    LiquidateIsolated,
    LpClaimRedeem,
    LpDeposit,
    LpRequestRedeem,
    LpWithdraw,
    OpenIsolated,
    TradeCross,
)
from simulation.adversary_pnl import DECIMALS
from simulation.agents.base import Agent, MarketTerms, Observation
from simulation.agents.oracle import deviation_move
from simulation.agents.self_liq import close_value_usd, liquidation_value_usd
from simulation.scenario import AdversaryConfig, OracleConfig
from simulation.state import IsolatedView, MarketView, Snapshot
from simulation.units import GWEI, USDC, WAD

LOW_FEE = GWEI // 2
"""Priority fee of what must land after the oracle's round (the oracle bids 50 gwei, traders 1)."""


@dataclass(frozen=True)
class AdversaryContext:
    market_ids: dict[str, int]
    terms: dict[int, MarketTerms]
    oracle: OracleConfig
    liquidation_at_fill_price: bool
    """The deployment's defence flag (a public immutable of the vault; what an attacker reads first)."""


def round_coming(
    oracle: OracleConfig,
    block: int,
    history: Sequence[Mapping[str, float]],
    snap: Snapshot,
    symbol: str,
) -> int:
    """+1 / -1 when the oracle agent will push a deviation round of `symbol` up / down in `block`, else 0:
    Chainlink's rule over the market price, exactly as simulation.agents.oracle applies it."""
    if any(w.stops(block, symbol) for w in oracle.outages):
        return 0
    seen = history[max(0, len(history) - 1 - oracle.delay_blocks)][symbol]
    answer, _ = snap.oracle_rounds[symbol]
    new = round(seen * 10**8)  # the local feeds' 8 decimals (adversaries run on local chains only)
    if answer <= 0 or new <= 0:
        return 0
    return deviation_move(new, answer, oracle.deviation)


class Adversary(Agent):
    """Shared plumbing: config, addresses, sizes."""

    def __init__(self, cfg: AdversaryConfig, addresses: tuple[str, ...], ctx: AdversaryContext):
        self.cfg, self._addresses, self.adv = cfg, addresses, ctx
        self.name, self.address = cfg.name, addresses[0]
        self.market = ctx.market_ids[cfg.market]
        self.fee = int(cfg.priority_fee_gwei * GWEI)

    @property
    def addresses(self) -> tuple[str, ...]:
        return self._addresses

    def _size(self, view: MarketView, side: int) -> int:
        assert view.price_wad is not None
        return side * int(self.cfg.notional_usd * WAD) * WAD // view.price_wad

    def _margin(self, view: MarketView | None = None) -> int:
        """Margin of a new position: notional / leverage, but at least the initial requirement (with the
        volatility buffer of the moment) plus 1 % of notional for the fill."""
        fraction = 1 / self.cfg.leverage
        if view is not None and view.initial_ratio_wad is not None:
            fraction = max(fraction, view.initial_ratio_wad / WAD + 0.01)
        return int(self.cfg.notional_usd * fraction * USDC)

    def _own_positions(self, snap: Snapshot) -> list[IsolatedView]:
        return [
            p
            for p in snap.positions.values()
            if p.owner == self.address and p.market_id == self.market
        ]

    def _own_position(self, snap: Snapshot) -> IsolatedView | None:
        return next(iter(self._own_positions(snap)), None)

    def decide(self, obs: Observation) -> list[Action]:
        raise NotImplementedError


class OracleFrontrunner(Adversary):
    """Opens an isolated position in the direction of the deviation round it sees coming, with a priority
    fee above the oracle's (so it fills at the old price), and closes it in a later block once the round
    landed (after that block's round when one comes the same way, before it when one comes the other way)."""

    def decide(self, obs: Observation) -> list[Action]:
        block, snap, history = obs.block, obs.snapshot, obs.prices_usd
        view = snap.market(self.market)
        if view.price_wad is None:
            return []
        move = round_coming(self.adv.oracle, block, history, snap, view.symbol)
        pos = self._own_position(snap)
        if pos is not None:
            fee = self.fee if move and (move > 0) != (pos.size_wad > 0) else LOW_FEE
            return [CloseIsolated(pos.position_id, priority_fee_wei=fee, label="adv_close")]
        if not move:
            return []
        size = self._size(view, move)
        return [
            OpenIsolated(
                self.market, size, self._margin(), priority_fee_wei=self.fee, label="adv_open"
            )
        ]


class JitLp(Adversary):
    """Just-in-time liquidity around its own trades, ahead of a deviation round: in one block it deposits
    `deposit_usd` into the pool (to cut the trade's impact), opens `notional_usd` in its cross account in
    the round's direction and withdraws the deposit, all before the round lands (priority fees above the
    oracle's); in the next block it wraps the close the same way. Whatever shares are left (its part of
    the fees it paid) it asks to exit as soon as the pool lets it, and claims when the exit is ready.
    Where the deposit's shares are locked (the cooldown) it is stuck as an LP until they unlock, and
    deposits no more meanwhile."""

    def decide(self, obs: Observation) -> list[Action]:
        block, snap, history = obs.block, obs.snapshot, obs.prices_usd
        wallet = snap.wallets.get(self.address)
        if wallet is None:
            return []
        if wallet.collateral_units.get("USDC", 0) == 0:  # first: the cross account's margin
            return [Deposit("USDC", self._margin(), gas=700_000, label="adv_margin")]
        if any(m.price_wad is None for m in snap.markets):
            return []  # a stale feed freezes the pool (its totalAssets reads every market)
        acct = snap.cross.get(self.address)
        size = acct.positions.get(self.market, (0, 0))[0] if acct else 0
        lp = wallet.lp
        locked = lp.held_shares > 0 and lp.requestable_shares == 0
        if size:  # the round landed: close, wrapped in liquidity when the pool allows
            return self._wrapped(-size, locked)
        view = snap.market(self.market)
        move = round_coming(self.adv.oracle, block, history, snap, view.symbol)
        if move and not locked:
            return self._wrapped(self._size(view, move), locked=False)
        if lp.claimable(snap.timestamp_s):
            return [LpClaimRedeem(label="adv_claim")]
        if lp.requestable_shares > 0:
            return [LpRequestRedeem(lp.requestable_shares, label="adv_exit")]
        return []

    def _wrapped(self, size_delta: int, locked: bool) -> list[Action]:
        """deposit -> trade -> withdraw the deposit, in this order in the block, all ahead of the oracle."""
        fee = self.fee
        trade = TradeCross(self.market, size_delta, priority_fee_wei=fee + GWEI, label="adv_trade")
        if locked:
            return [trade]
        deposit = int(self.cfg.deposit_usd * USDC)
        return [
            LpDeposit(deposit, priority_fee_wei=fee + 2 * GWEI, label="adv_deposit"),
            trade,
            LpWithdraw(deposit, priority_fee_wei=fee, label="adv_withdraw"),
        ]


class Griefer(Adversary):
    """A levered cross long with dust collateral of the other market's token (whose feed may go stale):
    on a deployment that reverts on stale collateral, nobody can liquidate the account while the feed is
    stale. It deposits the dust and the margin and opens in its first block, then holds."""

    def __init__(self, cfg: AdversaryConfig, addresses: tuple[str, ...], ctx: AdversaryContext):
        super().__init__(cfg, addresses, ctx)
        self.opened = False
        self.dust_token = "WBTC" if cfg.market == "ETH-USD" else "WETH"
        """The other market's token: its feed may go stale while this one's market trades."""
        self.dust_units = max(1, round(cfg.dust_collateral * 10 ** DECIMALS[self.dust_token]))

    def decide(self, obs: Observation) -> list[Action]:
        snap = obs.snapshot
        view = snap.market(self.market)
        if self.opened or view.price_wad is None:
            return []
        self.opened = True
        gas = 700_000
        return [
            Deposit(
                self.dust_token,
                self.dust_units,
                priority_fee_wei=3 * GWEI,
                gas=gas,
                label="adv_dust",
            ),
            Deposit("USDC", self._margin(), priority_fee_wei=2 * GWEI, gas=gas, label="adv_margin"),
            TradeCross(
                self.market, self._size(view, 1), priority_fee_wei=GWEI + 1, label="adv_open"
            ),
        ]


class SelfLiquidator(Adversary):
    """A levered isolated long from its first address. When the position is liquidatable it liquidates it
    from its second address if that leaves the two more than closing would (simulation.agents.self_liq),
    else closes it; when flat it opens again."""

    def decide(self, obs: Observation) -> list[Action]:
        snap = obs.snapshot
        view = snap.market(self.market)
        if view.price_wad is None or view.maintenance_ratio_wad is None:
            return []
        pos = self._own_position(snap)
        if pos is None:
            size = self._size(view, 1)
            margin = self._margin(view)
            return [OpenIsolated(self.market, size, margin, label="adv_open")]
        if pos.position_id not in snap.liquidatable_isolated:
            return []
        terms, liquidity = self.adv.terms[self.market], snap.trading_liquidity_quote * 10**12
        by_liquidating = liquidation_value_usd(
            pos, view, terms, liquidity, self.adv.liquidation_at_fill_price
        )
        by_closing = close_value_usd(pos, view, terms, liquidity)  # at once, as the review compared
        if by_liquidating > by_closing:
            return [
                LiquidateIsolated(
                    pos.position_id,
                    priority_fee_wei=self.fee,
                    gas=700_000,
                    sender=self.addresses[1],
                    label="adv_self_liquidate",
                )
            ]
        return [CloseIsolated(pos.position_id, priority_fee_wei=self.fee, label="adv_close")]


class Manipulator(Adversary):
    """An oracle manipulator (Mango Markets 2022, JELLY on Hyperliquid 2025). From one address, in
    `start_block`: an isolated long of `notional_usd` at `long_leverage` and an isolated short of the same
    size at `leverage` (thin margin: the leg it gives up). Then for `pump_blocks` it buys `pump_usd` a
    block on the market's outside venue, the source its oracle reads (simulation.depth moves that price;
    the oracle follows at its deviation threshold). `hold_blocks` after the pump it closes the long at
    the pumped oracle price, which the LP pool pays, and then sells what it bought over `dump_blocks`.
    The short is left to the keepers: liquidated into the pool as the price rises, with bad debt when the
    rise outruns its margin. Its outside cash and inventory count in its PnL (`outside_value_usd`)."""

    def __init__(self, cfg: AdversaryConfig, addresses: tuple[str, ...], ctx: AdversaryContext):
        super().__init__(cfg, addresses, ctx)
        self.asset = cfg.market.split("-")[0]
        self.opened = self.closed = False
        self.close_block = cfg.start_block + cfg.pump_blocks + cfg.hold_blocks + 1
        self.cash_usd = 0.0
        """Outside venue: USD spent (-) and received (+)."""
        self.units = 0.0
        """Outside venue: units of the asset held."""
        self.dump_left = 0
        self.dump_units = 0.0

    def decide(self, obs: Observation) -> list[Action]:
        block, snap = obs.block, obs.snapshot
        view = snap.market(self.market)
        if view.price_wad is None or view.initial_ratio_wad is None:
            return []
        if not self.opened and block >= self.cfg.start_block:
            self.opened = True
            # each leg's fill costs its spread and impact: 2 % of notional above the initial ratio covers
            # both at the sizes this agent is meant for (a few % of the pool)
            least = view.initial_ratio_wad / WAD + 0.02
            long_fraction = max(1 / self.cfg.long_leverage, least)
            short_fraction = max(1 / self.cfg.leverage, least)
            return [
                OpenIsolated(
                    self.market,
                    self._size(view, sign),
                    int(self.cfg.notional_usd * fraction * USDC),
                    label="adv_open",
                )
                for sign, fraction in ((1, long_fraction), (-1, short_fraction))
            ]
        if self.opened and not self.closed and block >= self.close_block:
            longs = [p for p in self._own_positions(snap) if p.size_wad > 0]
            self.closed = True
            self.dump_left, self.dump_units = self.cfg.dump_blocks, self.units
            return [
                CloseIsolated(p.position_id, priority_fee_wei=self.fee, label="adv_close")
                for p in longs
            ]
        return []

    def outside_order(self, block: int, price: float) -> float:
        """Signed USD (at the block's market `price`) it trades on the outside venue in `block`: buys
        during the pump, sells an equal part of its inventory each block after the close."""
        start = self.cfg.start_block
        if self.opened and start < block <= start + self.cfg.pump_blocks:
            return self.cfg.pump_usd
        if self.closed and self.dump_left > 0 and self.units > 0:
            self.dump_left -= 1
            units = self.units if self.dump_left == 0 else self.dump_units / self.cfg.dump_blocks
            return -min(units, self.units) * price
        return 0.0

    def filled(self, units: float, paid_usd: float) -> None:
        """An outside fill: `units` bought (+) or sold (-) for `paid_usd` paid (+) or received (-)."""
        self.cash_usd -= paid_usd
        self.units += units

    def outside_value_usd(self, price: float) -> float:
        """Its outside cash plus its inventory at the market price."""
        return self.cash_usd + self.units * price


KINDS: dict[str, type[Adversary]] = {
    "jit_lp": JitLp,
    "oracle_frontrunner": OracleFrontrunner,
    "self_liquidator": SelfLiquidator,
    "griefer": Griefer,
    "manipulator": Manipulator,
}


def addresses_needed(cfg: AdversaryConfig) -> int:
    """How many addresses an adversary acts from (its PnL counts them together)."""
    return 2 if cfg.kind == "self_liquidator" else 1


def make_adversary(
    cfg: AdversaryConfig, addresses: tuple[str, ...], ctx: AdversaryContext
) -> Adversary:
    return KINDS[cfg.kind](cfg, addresses, ctx)
