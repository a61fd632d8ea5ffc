"""Regression: a bad-debt liquidation must work when the vault holds nothing but that account's funds.

The settlement once paid the pool the whole loss before the insurance cover arrived, silently borrowing
other users' balances for the length of the call and reverting when there were none.
"""

import ape
from conftest import ETH, USDC_UNIT, WAD


def _bad_debt(tx, vault):
    events = tx.decode_logs(vault.BadDebtCovered)
    assert len(events) == 1
    return events[0]


def test_isolated_bad_debt_alone_in_vault(
    vault, usdc, insurance, alice, keeper, eth_feed, set_price, fund
):
    fund(usdc, alice, 600)
    start = usdc.balanceOf(alice)
    pid = vault.openIsolated(ETH, WAD, 600 * USDC_UNIT, sender=alice).return_value
    assert usdc.balanceOf(vault) == 600 * USDC_UNIT  # nothing else to borrow from
    fund_before = usdc.balanceOf(insurance)
    set_price(eth_feed, 1500)  # a $1,500 loss on $600 of margin
    tx = vault.liquidateIsolated(pid, sender=keeper)
    ev = _bad_debt(tx, vault)
    assert ev.badDebt == ev.fromInsurance + ev.fromPool > 0
    assert usdc.balanceOf(insurance) == fund_before - ev.fromInsurance
    assert vault.position(pid).owner == ape.utils.ZERO_ADDRESS
    assert usdc.balanceOf(alice) == start - 600 * USDC_UNIT  # the loss stops at the margin
    assert usdc.balanceOf(vault) == 0  # the books are empty, and so is the vault


def test_cross_bad_debt_alone_in_vault(
    vault, usdc, insurance, alice, keeper, eth_feed, set_price, fund
):
    fund(usdc, alice, 600)
    vault.depositCollateral(usdc, 600 * USDC_UNIT, sender=alice)
    vault.tradeCross(ETH, WAD, sender=alice)
    fund_before = usdc.balanceOf(insurance)
    set_price(eth_feed, 1500)
    tx = vault.liquidateCross(alice, sender=keeper)
    ev = _bad_debt(tx, vault)
    assert ev.badDebt == ev.fromInsurance + ev.fromPool > 0
    assert usdc.balanceOf(insurance) == fund_before - ev.fromInsurance
    assert vault.crossPosition(alice, ETH).size == 0
    assert vault.collateralBalance(alice, usdc) == 0
    assert usdc.balanceOf(vault) == 0
