"""The measurement functions without a chain: decoded events folded into the run's counters, a block's
row and a keeper's statistics (simulation.metrics.count_event), a mined block's receipts folded whole
(fold_receipts: logs encoded here as a node writes them, decoded with the compiled ABIs). Expected
figures are worked out by hand from the events' fields (USDC has 6 decimals, prices and sizes are
wads)."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak

from simulation.abi import EventDecoder
from simulation.agents.base import Tx
from simulation.build import compile_contracts
from simulation.metrics import (
    CarryTracker,
    Counters,
    KeeperCards,
    KeeperStats,
    Leg,
    Races,
    count_event,
    count_revert,
    fold_receipts,
    latent_bad_debt,
    mark_pnl,
)
from simulation.state import CrossView, IsolatedView, MarketView, Snapshot
from simulation.units import USDC

WAD = 10**18


def stats() -> dict[str, float]:
    return {"liquidations": 0, "isolated": 0, "cross": 0, "notional_usd": 0.0}


def test_an_isolated_liquidation_counts_for_the_run_the_block_and_its_keeper():
    c, s, k = Counters(), stats(), KeeperStats()
    event = {
        "closedSize": -2 * WAD,  # a short of 2 ETH
        "priceWad": 3_000 * WAD,
        "realizedPnl": -150_000_000,  # -$150
        "keeperReward": 30_000_000,  # $30
        "insuranceFee": 30_000_000,
    }
    count_event(c, "IsolatedLiquidated", event, k, s)
    assert (c.liquidations, c.liquidations_isolated, c.liquidations_cross) == (1, 1, 0)
    assert c.liquidated_notional_usd == pytest.approx(6_000.0) == s["notional_usd"]
    assert c.profitable_positions_liquidated == 0
    assert c.collateral_lost_usd == pytest.approx(210.0)  # $150 lost + $30 + $30 paid
    assert (s["liquidations"], s["isolated"], s["cross"]) == (1, 1, 0)
    assert (k.liquidations, k.rewards_usd) == (1, pytest.approx(30.0))


def test_a_cross_liquidation_its_positions_and_its_bad_debt():
    c, s = Counters(), stats()
    count_event(
        c,
        "CrossPositionLiquidated",
        {"closedSize": WAD // 2, "priceWad": 60_000 * WAD, "realizedPnlUsd": 5 * WAD},
        None,
        s,
    )
    count_event(
        c,
        "CrossLiquidated",
        {"realizedPnl": -1_000_000_000, "keeperReward": 10_000_000, "insuranceFee": 0},
        None,
        s,
    )
    count_event(
        c,
        "BadDebtCovered",
        {
            "badDebt": 400_000_000,
            "fromInsurance": 300_000_000,
            "fromPool": 60_000_000,
            "toDeleverage": 40_000_000,
            "marketId": 0,
        },
        None,
        s,
    )
    count_event(c, "CollateralSeized", {}, None, s)
    count_event(c, "IsolatedOpened", {"positionId": 1}, None, s)  # not a measured event
    assert (c.liquidations, c.liquidations_cross, s["cross"]) == (1, 1, 1)
    assert c.liquidated_notional_usd == pytest.approx(30_000.0)  # half a BTC at $60,000
    assert c.profitable_positions_liquidated == 1  # the BTC leg closed at a profit
    assert (c.bad_debt_usd, c.bad_debt_from_insurance_usd, c.bad_debt_from_pool_usd) == (
        pytest.approx(400.0),
        pytest.approx(300.0),
        pytest.approx(60.0),
    )
    assert c.bad_debt_to_deleverage_usd == pytest.approx(40.0)  # past the pool's loss cap
    count_event(c, "Deleveraged", {"haircut": 25_000_000, "closedSize": -WAD}, None, s)
    count_event(c, "Deleveraged", {"haircut": 15_000_000, "closedSize": -WAD}, None, s)
    assert (c.deleveraged, c.deleverage_haircut_usd) == (2, pytest.approx(40.0))
    # $1,000 lost + $10 to the keeper, less the $400 of it the account could not pay
    assert c.collateral_lost_usd == pytest.approx(610.0)
    assert c.collateral_seized == 1


# ---------------------------------------------------------------- a mined block folded (fold_receipts)


def _abi_events() -> EventDecoder:
    """The decoder over the compiled contracts' own ABIs (compiled once, cached; no chain)."""
    return EventDecoder(a.abi for a in compile_contracts().values())


def _log(event: str, indexed: list[tuple[str, object]], data: list[tuple[str, object]]) -> dict:
    """A receipt's log as a node writes it: topic0 the event's signature hash, then the indexed
    arguments as words, the rest ABI-encoded in `data`."""
    sig = f"{event}({','.join(t for t, _ in indexed + data)})"
    topics = ["0x" + keccak(text=sig).hex()]
    topics += ["0x" + encode([t], [v]).hex() for t, v in indexed]
    body = encode([t for t, _ in data], [v for _, v in data])
    return {"topics": topics, "data": "0x" + body.hex(), "logIndex": "0x3"}


def _receipt(status: int, gas: int, logs: list[dict] = ()) -> dict:
    return {
        "transactionHash": "0x" + f"{gas:064x}",
        "status": hex(status),
        "gasUsed": hex(gas),
        "effectiveGasPrice": hex(10**9),
        "logs": list(logs),
    }


KEEPER_A, OWNER, VAULT = "0x" + "aa" * 20, "0x" + "cc" * 20, "0x" + "dd" * 20


def _tx(agent: str, kind: str, target: str = "") -> Tx:
    return Tx(
        agent, kind, "0x" + agent.encode().hex().ljust(40, "0"), VAULT, "0x", 400_000, target=target
    )


def _liquidated(position: int, keeper: str) -> dict:
    return _log(
        "IsolatedLiquidated",
        [("uint256", position), ("address", OWNER), ("address", keeper)],
        [
            ("int256", 2 * WAD),  # a long of 2 ETH
            ("uint256", 3_000 * WAD),
            ("int256", -100_000_000),  # -$100
            ("uint256", 20_000_000),  # $20 to the keeper
            ("uint256", 10_000_000),
            ("uint256", 0),
            ("bool", True),
        ],
    )


def test_a_block_folds_events_gas_reverts_and_a_lost_race():
    c = Counters(keepers={"k1": KeeperStats(), "k2": KeeperStats()})
    races, adv_gas = Races(window=1), {"adv": 0.0}
    sent = [
        (_tx("k1", "liquidate", target="iso:7"), _receipt(1, 150_000, [_liquidated(7, KEEPER_A)])),
        (_tx("k2", "liquidate", target="iso:7"), _receipt(0, 30_000)),
        (_tx("adv", "open"), _receipt(1, 100_000)),
        (_tx("oracle", "oracle_round"), _receipt(1, 50_000)),
        (_tx("t1", "open"), None),  # never mined: no receipt
    ]
    stats, events, reverted = fold_receipts(
        c, 12, sent, _abi_events().decode, races, adv_gas, 2_000 * WAD
    )
    assert [(agent, name) for agent, name, _ in events] == [("k1", "IsolatedLiquidated")]
    assert events[0][2]["positionId"] == 7 and events[0][2]["keeper"].lower() == KEEPER_A
    # where the event is on chain: its transaction and its index in the block's logs
    assert (events[0][2]["txHash"], events[0][2]["logIndex"]) == ("0x" + f"{150_000:064x}", 3)
    assert (stats["block"], stats["tx_sent"], stats["tx_reverted"]) == (12, 5, 2)
    assert (stats["liquidations"], stats["isolated"]) == (1, 1)
    assert stats["notional_usd"] == pytest.approx(6_000.0)
    assert (c.tx_sent, c.tx_reverted, c.oracle_rounds, c.liquidations) == (5, 2, 1, 1)
    k1, k2 = c.keepers["k1"], c.keepers["k2"]
    assert (k1.liquidations, k1.rewards_usd, k1.gas_used) == (1, pytest.approx(20.0), 150_000)
    # k2's liquidation of the same target reverted in the same block: a lost race, its gas wasted
    assert (k2.reverted, k2.lost_races, k2.wasted_gas, k2.gas_used) == (1, 1, 30_000, 30_000)
    # in USD at $2,000 an ETH and the receipts' 1 gwei: what it paid, all wasted
    assert k2.gas_usd == k2.wasted_gas_usd == pytest.approx(30_000 * 10**9 * 2_000 / 10**18)
    assert k1.gas_usd == pytest.approx(0.3) and k1.wasted_gas_usd == 0
    assert races.liquidated_at == {"iso:7": 12}
    assert adv_gas["adv"] == pytest.approx(100_000 * 10**9 * 2_000 / 10**18)  # $0.20
    assert [tx.agent for tx, _ in reverted] == ["k2"]  # the unmined one has no receipt to trace


def test_a_revert_long_after_the_winner_is_not_a_lost_race():
    c = Counters(keepers={"k2": KeeperStats()})
    races = Races(window=1, liquidated_at={"iso:7": 10})
    sent = [(_tx("k2", "liquidate", target="iso:7"), _receipt(0, 30_000))]
    fold_receipts(c, 12, sent, _abi_events().decode, races, {}, 2_000 * WAD)
    assert (c.keepers["k2"].reverted, c.keepers["k2"].lost_races, c.keepers["k2"].wasted_gas) == (
        1,
        0,
        0,
    )


def test_reverts_are_counted_by_kind_and_reason():
    c = Counters()
    count_revert(c, "liquidate", "NotLiquidatable")
    count_revert(c, "liquidate", "NotLiquidatable")
    count_revert(c, "open", "OpenInterestCap")
    assert c.reverts_by_kind == {"liquidate:NotLiquidatable": 2, "open:OpenInterestCap": 1}


# ---------------------------------------------------------------- latent bad debt (latent_bad_debt)


def _snapshot(positions, cross, liquidatable_isolated, liquidatable_cross) -> Snapshot:
    eth = MarketView(0, "ETH-USD", "ETH", 2_000 * WAD, WAD // 10, WAD // 20, 0, 0)
    return Snapshot(
        1, 0, 0, (eth,), {}, positions, cross, liquidatable_isolated, liquidatable_cross, 0, 0, 0, 0
    )


def test_latent_bad_debt_sums_the_negative_equity_of_what_no_keeper_took():
    owner = "0x" + "cc" * 20
    positions = {
        # a 1 ETH long entered at $2,500 with $300 of margin, ETH at $2,000: equity -$200
        1: IsolatedView(1, owner, 0, WAD, 300 * USDC, 2_500 * WAD),
        # liquidatable but still solvent: a 1 ETH long at $2,200 with $250: equity +$50
        2: IsolatedView(2, owner, 0, WAD, 250 * USDC, 2_200 * WAD),
        # underwater too, but not in the scan: not counted (the scan is what a keeper sees)
        3: IsolatedView(3, owner, 0, WAD, 100 * USDC, 2_500 * WAD),
    }
    cross = {
        "0xa": CrossView(-75 * WAD, 10 * WAD, 5 * WAD, {0: (WAD, 2_075 * WAD)}, 0),
        "0xb": CrossView(-1 * WAD, 10 * WAD, 5 * WAD, {0: (WAD, 2_001 * WAD)}, 0),
    }
    snap = _snapshot(positions, cross, (1, 2), ("0xa",))
    count, usd = latent_bad_debt(snap)
    assert count == 3  # positions 1 and 2, account 0xa
    assert usd == pytest.approx(200.0 + 75.0)
    assert latent_bad_debt(_snapshot(positions, cross, (), ())) == (0, 0.0)


def test_a_leg_flat_on_the_market_counts_as_profitable_though_its_fill_lost():
    """Contagion is judged on the closed leg's PnL at the oracle price, not at the liquidation's fill
    (whose spread and impact make a flat leg look like a loss)."""
    owner = "0x" + "AB" * 20
    # a short of 0.5 BTC-sized units entered at $2,010 with the oracle at $2,000: +$5 on the market
    cross = {owner: CrossView(0, 0, 0, {0: (-WAD // 2, 2_010 * WAD)}, 0)}
    snap = _snapshot({}, cross, (), ())
    leg = {
        "account": owner.lower(),
        "marketId": 0,
        "closedSize": -WAD // 2,
        "priceWad": 2_000 * WAD,
        "realizedPnlUsd": -3 * WAD,  # bought back at $2,016: -$3 at the fill
    }
    marked = mark_pnl("CrossPositionLiquidated", leg, snap)
    assert marked["markPnlUsd"] == 5 * WAD
    c = Counters()
    count_event(c, "CrossPositionLiquidated", marked, None, stats())
    assert c.profitable_positions_liquidated == 1
    count_event(
        c, "CrossPositionLiquidated", leg, None, stats()
    )  # without the mark: the fill's PnL
    assert c.profitable_positions_liquidated == 1
    # an isolated long from $2,100 liquidated at $2,000: -$100 on the market
    iso = {4: IsolatedView(4, owner, 0, WAD, 100 * USDC, 2_100 * WAD)}
    args = {"positionId": 4, "closedSize": WAD, "priceWad": 2_000 * WAD, "realizedPnl": -101 * USDC}
    assert (
        mark_pnl("IsolatedLiquidated", args, _snapshot(iso, {}, (), ()))["markPnlUsd"] == -100 * WAD
    )
    # a position the snapshot does not hold: left as it is
    assert "markPnlUsd" not in mark_pnl("IsolatedLiquidated", args, snap)


# ---------------------------------------------------------------- collateral to carry a book (CarryTracker)


def _leg(owner: str, key: str, initial: float, maintenance: float, pnl: float) -> Leg:
    return Leg(owner, (key,), int(initial * WAD), int(maintenance * WAD), int(pnl * WAD))


def test_carrying_a_hedged_pair_costs_less_cross_than_isolated():
    """A long and a short of one owner: each leg's worst moment comes at a different block, so each
    needs its own cover isolated, while the account's sum never dips as deep."""
    t = CarryTracker()
    # block 1: both open (initial requirement $100 each, no PnL yet)
    t.update(1, [_leg("a", "long", 100, 50, 0), _leg("a", "short", 100, 50, 0)])
    # block 2: the long loses $300, the short gains $280
    t.update(2, [_leg("a", "long", 100, 50, -300), _leg("a", "short", 100, 50, 280)])
    # block 3: the reverse
    t.update(3, [_leg("a", "long", 100, 50, 260), _leg("a", "short", 100, 50, -290)])
    # isolated: long max(100, 350, -210) = 350; short max(100, -230, 340) = 340
    assert t.isolated_usd == pytest.approx(690)
    # cross: the account max(200, 350 - 230, -210 + 340) = 200
    assert t.cross_usd == pytest.approx(200)


def test_a_leg_in_profit_throughout_needs_only_its_opening_and_nothing_negative_counts():
    t = CarryTracker()
    t.update(1, [_leg("b", "x", 10, 5, 0)])
    t.update(2, [_leg("b", "x", 10, 5, 40)])  # maintenance 5 - PnL 40 < 0
    assert t.isolated_usd == pytest.approx(10) and t.cross_usd == pytest.approx(10)
    t.update(3, [_leg("c", "y", 10, 5, 50)])  # opens already in profit: needs nothing
    assert t.isolated_usd == pytest.approx(10) and t.cross_usd == pytest.approx(10)


def test_margin_freed_by_a_closed_position_carries_the_next_one():
    """One owner, two positions one after the other, each needing $100 at worst: isolated, the
    second is funded by the first's returned margin, so $100, not $200; so is cross."""
    t = CarryTracker()
    t.update(1, [_leg("d", "first", 100, 50, 0)])
    t.update(2, [_leg("d", "first", 100, 50, -50)])  # needs 50 + 50 = 100
    t.update(3, [_leg("d", "second", 100, 50, 0)])  # the first closed; the second opens
    t.update(4, [_leg("d", "second", 100, 50, -20)])
    assert t.isolated_usd == pytest.approx(100) and t.cross_usd == pytest.approx(100)
    # a third position overlapping the second: both locked at once, 100 + 60
    t.update(5, [_leg("d", "second", 100, 50, 0), _leg("d", "third", 60, 30, 0)])
    assert t.isolated_usd == pytest.approx(160)


def _took(keeper: str, target: str) -> tuple[str, str, dict]:
    """The liquidation event of `keeper`'s transaction that took `target`."""
    kind, _, what = target.partition(":")
    if kind == "iso":
        return keeper, "IsolatedLiquidated", {"positionId": int(what)}
    return keeper, "CrossLiquidated", {"account": what}


def test_a_keepers_report_card_from_episodes():
    """Two keepers, two episodes: `a` takes position 1 at its first chance and ignores the underwater
    account; `b` misses the position, tries the account once (and reverts), then leaves it."""
    cards = KeeperCards(["a", "b"])
    usd = 10**18
    cards.after(1, {"iso:1": 0})  # liquidatable, not underwater
    took = _tx("a", "liquidate_isolated", target="iso:1")
    cards.fold(2, [(took, _receipt(1, 1, []))], [_took("a", "iso:1")])
    cards.after(2, {"cross:0xab": 100 * usd})  # position 1 gone; the account is $100 under
    cards.fold(3, [(_tx("b", "liquidate_cross", target="cross:0xAB"), _receipt(0, 1))])
    cards.after(3, {"cross:0xab": 50 * usd})
    cards.fold(4, [])
    cards.after(4, {"cross:0xab": 50 * usd})
    cards.fold(5, [])
    cards.after(5, {"cross:0xab": 50 * usd})
    stats = {"a": KeeperStats(), "b": KeeperStats()}
    cards.finish(
        stats, last_block=5
    )  # the account is still open at the end: its episode ends there
    a, b = stats["a"], stats["b"]
    assert (a.missed, a.latency_blocks_p50, a.latency_blocks_max) == (1, 1.0, 1)
    assert (b.missed, b.latency_blocks_p50, b.latency_blocks_max) == (1, None, None)
    # latent bad debt: $100 after block 2 (b aimed at it in block 3), $50 after blocks 3 and 4 (nobody)
    assert a.latent_left_share == pytest.approx(1.0)
    assert b.latent_left_share == pytest.approx(100 / 200, abs=1e-6)


def test_a_liquidation_through_a_keepers_own_contract_is_read_from_its_event():
    """A bot that calls its own contract sends no transaction naming the target: its event does."""
    cards = KeeperCards(["bot"])
    cards.after(1, {"cross:0xcd": 0})
    via = Tx("bot", "call", "0x" + "b" * 40, "0x" + "c" * 40, "0x", 900_000)  # no target
    cards.fold(3, [(via, _receipt(1, 1, []))], [_took("bot", "cross:0xCD")])
    cards.after(3, {})
    stats = {"bot": KeeperStats()}
    cards.finish(stats, last_block=3)
    assert (stats["bot"].missed, stats["bot"].latency_blocks_max) == (0, 2)


def test_an_episode_begun_at_the_very_end_is_nobody_s_miss():
    cards = KeeperCards(["a"], window=2)
    cards.after(9, {"iso:1": 0})  # two blocks before the end: reachable
    cards.fold(10, [])
    cards.after(10, {"iso:1": 0, "iso:2": 0})  # in the last window: not charged
    cards.fold(11, [])
    cards.after(11, {"iso:1": 0, "iso:2": 0})
    stats = {"a": KeeperStats()}
    cards.finish(stats, last_block=11)
    assert stats["a"].missed == 1


def test_no_latent_bad_debt_leaves_no_share():
    cards = KeeperCards(["a"])
    cards.after(1, {"iso:3": 0})
    liquidate = _tx("a", "liquidate_isolated", target="iso:3")
    cards.fold(2, [(liquidate, _receipt(1, 1, []))], [_took("a", "iso:3")])
    cards.after(2, {"iso:3": 0})  # partly liquidated, still liquidatable
    cards.fold(3, [(liquidate, _receipt(1, 1, []))], [_took("a", "iso:3")])
    cards.after(3, {})
    stats = {"a": KeeperStats()}
    cards.finish(stats, last_block=3)
    assert (stats["a"].missed, stats["a"].latency_blocks_p50, stats["a"].latency_blocks_max) == (
        0,
        1.5,
        2,
    )
    assert stats["a"].latent_left_share is None


def test_a_keeper_one_block_late_lost_a_race_and_did_not_miss():
    """`b` aims at the position the block after `a` took it: within the race window, so tried (its
    lost race is counted by fold_receipts); `c` aims two blocks late: a miss."""
    cards = KeeperCards(["a", "b", "c"], window=1)
    cards.after(1, {"iso:5": 0})
    took = _tx("a", "liquidate_isolated", target="iso:5")
    cards.fold(2, [(took, _receipt(1, 1, []))], [_took("a", "iso:5")])
    cards.after(2, {})
    cards.fold(3, [(_tx("b", "liquidate_isolated", target="iso:5"), _receipt(0, 1))])
    cards.after(3, {})
    cards.fold(4, [(_tx("c", "liquidate_isolated", target="iso:5"), _receipt(0, 1))])
    cards.after(4, {})
    stats = {k: KeeperStats() for k in "abc"}
    cards.finish(stats, last_block=4)
    assert [stats[k].missed for k in "abc"] == [0, 0, 1]
