"""Python reference model of contracts/libraries/MarginMath.sol: same functions, names, roundings.

Integers only (wad = 1e18), so results match the contract to the unit. The property-based tests
check the chain against this model after every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulation.units import WAD

USD_DECIMALS = 18
LIQUIDATION_TARGET_HEALTH = 125 * 10**16  # 1.25e18
SECONDS_PER_HOUR = 3600
MAX_IMPACT_FRACTION = 5 * 10**16  # impact never exceeds 5 % of price (ConstantsLib)


def mul_div_down(x: int, y: int, d: int) -> int:
    return (x * y) // d


def mul_div_up(x: int, y: int, d: int) -> int:
    return -((-x * y) // d)


def mul_wad_down(x: int, y: int) -> int:
    return mul_div_down(x, y, WAD)


def mul_wad_up(x: int, y: int) -> int:
    return mul_div_up(x, y, WAD)


def _unit(decimals: int) -> int:
    return 10 ** (USD_DECIMALS - decimals)


def quote_to_usd(amount: int, decimals: int) -> int:
    return amount * _unit(decimals)


def usd_to_quote_down(usd: int, decimals: int) -> int:
    return usd // _unit(decimals)


def usd_to_quote_up(usd: int, decimals: int) -> int:
    return -(-usd // _unit(decimals))


def signed_usd_to_quote_floor(usd: int, decimals: int) -> int:
    return usd // _unit(decimals)  # Python's // already floors toward minus infinity


def value_usd_down(amount: int, decimals: int, price_wad: int) -> int:
    return mul_div_down(amount, price_wad, 10**decimals)


def notional_usd_up(size: int, price_wad: int) -> int:
    return mul_wad_up(abs(size), price_wad)


def notional_usd_down(size: int, price_wad: int) -> int:
    return mul_wad_down(abs(size), price_wad)


def pnl_usd_floor(size: int, entry_price_wad: int, price_wad: int) -> int:
    """size * (price - entry) / 1e18, rounded toward minus infinity."""
    return (size * (price_wad - entry_price_wad)) // WAD


def entry_notional_signed(size: int, entry_price_wad: int) -> int:
    n = mul_wad_down(abs(size), entry_price_wad)
    return n if size >= 0 else -n


def requirement_usd_up(notional_usd: int, ratio_wad: int) -> int:
    return mul_wad_up(notional_usd, ratio_wad)


@dataclass(frozen=True)
class Health:
    """Equity and requirements, USD wad."""

    equity_usd: int
    initial_usd: int
    maintenance_usd: int

    @property
    def liquidatable(self) -> bool:
        return self.equity_usd < self.maintenance_usd

    @property
    def meets_initial(self) -> bool:
        return self.equity_usd >= self.initial_usd

    def __add__(self, other: Health) -> Health:
        return Health(
            self.equity_usd + other.equity_usd,
            self.initial_usd + other.initial_usd,
            self.maintenance_usd + other.maintenance_usd,
        )


def position_health(
    margin_usd: int,
    size: int,
    entry_price_wad: int,
    price_wad: int,
    initial_ratio_wad: int,
    maintenance_ratio_wad: int,
) -> Health:
    notional = notional_usd_up(size, price_wad)
    return Health(
        margin_usd + pnl_usd_floor(size, entry_price_wad, price_wad),
        requirement_usd_up(notional, initial_ratio_wad),
        requirement_usd_up(notional, maintenance_ratio_wad),
    )


def trade_fee_fraction_up(
    spread_wad: int, min_fee_wad: int, impact_coefficient_wad: int, notional_usd: int, liquidity_usd: int
) -> int:
    """Spread plus impact (coefficient * notional / liquidity, capped at 5 %), floored at min_fee_wad."""
    impact = MAX_IMPACT_FRACTION
    if liquidity_usd > 0:
        impact = min(impact, mul_div_up(mul_wad_up(notional_usd, impact_coefficient_wad), WAD, liquidity_usd))
    return max(spread_wad + impact, min_fee_wad)


def fill_price_against_trader(price_wad: int, size_delta: int, fee_fraction_wad: int) -> int:
    if size_delta > 0:
        return mul_wad_up(price_wad, WAD + fee_fraction_wad)
    return mul_wad_down(price_wad, WAD - fee_fraction_wad)


def average_entry_against_trader(
    size: int, entry_price_wad: int, size_delta: int, fill_price_wad: int
) -> int:
    a, b = abs(size), abs(size_delta)
    weighted = a * entry_price_wad + b * fill_price_wad
    return -(-weighted // (a + b)) if size + size_delta > 0 else weighted // (a + b)


def volatility_buffer_up(
    hourly_vol_wad: int, vol_floor_wad: int, slope_wad: int, max_buffer_wad: int
) -> int:
    if hourly_vol_wad <= vol_floor_wad:
        return 0
    return min(max_buffer_wad, mul_wad_up(hourly_vol_wad - vol_floor_wad, slope_wad))


def liquidation_fraction_up(equity_usd: int, maintenance_usd: int, penalty_usd: int) -> int:
    target = mul_wad_up(maintenance_usd, LIQUIDATION_TARGET_HEALTH)
    if equity_usd <= 0 or target <= penalty_usd or equity_usd <= penalty_usd:
        return WAD
    if equity_usd >= target:
        return 0
    return min(WAD, mul_div_up(target - equity_usd, WAD, target - penalty_usd))


def scale_size_up(size: int, fraction_wad: int) -> int:
    scaled = min(abs(size), mul_wad_up(abs(size), fraction_wad))
    return scaled if size > 0 else -scaled


def hourly_volatility_wad(rounds: list[tuple[int, int]], window: int) -> int:
    """Mirror of OracleAdapter.hourlyVolatilityWad over (answer, updatedAt) rounds, oldest first."""
    if len(rounds) < 2:
        return 0
    newer, last_time = rounds[-1]
    first_time = last_time
    total = 0
    for older, older_time in reversed(rounds[-(window + 1) : -1]):
        diff = abs(newer - older)
        r = mul_div_down(diff, WAD, older)
        total += mul_div_down(r, r, WAD)
        newer, first_time = older, older_time
    if total == 0:
        return 0
    elapsed = last_time - first_time if last_time > first_time else 1
    return math.isqrt(mul_div_down(total, SECONDS_PER_HOUR, elapsed) * WAD)
