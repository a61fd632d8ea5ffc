"""Python reference model of contracts/libraries/MarginMath.sol: same functions, names, roundings.

Integers only (wad = 1e18), so results match the contract to the unit. The property-based tests
check the chain against this model after every step, and tests/test_margin_math.py checks every
function against the library itself (through contracts/harness/MarginMathHarness.sol).

Where the contract reverts (checked uint256/int256 arithmetic, division by zero) the model raises
OverflowError or ZeroDivisionError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulation.units import WAD

USD_DECIMALS = 18
LIQUIDATION_TARGET_HEALTH = 125 * 10**16  # 1.25e18
SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86400
MAX_IMPACT_FRACTION = 5 * 10**16  # impact never exceeds 5 % of price (ConstantsLib)
UINT256_MAX = 2**256 - 1
INT256_MIN, INT256_MAX = -(2**255), 2**255 - 1


class Int256CastOverflow(OverflowError):
    """A uint256 too large for int256, where MarginMath converts with SafeCast.toInt256 (which reverts);
    the model raises it (an OverflowError, as tests/test_margin_math.py expects of a revert)."""


def _uint256(x: int) -> int:
    """Checked uint256 arithmetic: a result outside the type reverts (Panic 0x11)."""
    if not 0 <= x <= UINT256_MAX:
        raise OverflowError(f"{x} is not a uint256")
    return x


def _int256(x: int) -> int:
    """Checked int256 arithmetic: a result outside the type reverts (Panic 0x11)."""
    if not INT256_MIN <= x <= INT256_MAX:
        raise OverflowError(f"{x} is not an int256")
    return x


def _to_int256(x: int) -> int:
    """`int256(x)` of a uint256 (see Int256CastOverflow)."""
    if x > INT256_MAX:
        raise Int256CastOverflow(f"int256({x}) wraps")
    return x


def mul_div_down(x: int, y: int, d: int) -> int:
    return _uint256((x * y) // d)


def mul_div_up(x: int, y: int, d: int) -> int:
    return _uint256(-((-x * y) // d))


def mul_wad_down(x: int, y: int) -> int:
    return mul_div_down(x, y, WAD)


def mul_wad_up(x: int, y: int) -> int:
    return mul_div_up(x, y, WAD)


def _scale(decimals: int) -> int:
    return _uint256(10**decimals)  # 10 ** decimals past uint256 (decimals > 77) reverts


def quote_to_usd_down(amount: int, decimals: int, quote_price_wad: int = WAD) -> int:
    """Quote tokens to USD wad at the quote's price (1e18 at par: exact), rounded down."""
    return value_usd_down(amount, decimals, quote_price_wad)


def quote_to_usd_up(amount: int, decimals: int, quote_price_wad: int = WAD) -> int:
    return mul_div_up(amount, quote_price_wad, _scale(decimals))


def usd_to_quote_down(usd: int, decimals: int, quote_price_wad: int = WAD) -> int:
    return mul_div_down(usd, _scale(decimals), quote_price_wad)


def usd_to_quote_up(usd: int, decimals: int, quote_price_wad: int = WAD) -> int:
    return mul_div_up(usd, _scale(decimals), quote_price_wad)


def signed_usd_to_quote_floor(usd: int, decimals: int, quote_price_wad: int = WAD) -> int:
    if usd == INT256_MIN:
        raise OverflowError("-usd of type(int256).min")  # the contract negates a negative usd
    if usd >= 0:
        return usd_to_quote_down(usd, decimals, quote_price_wad)
    return -usd_to_quote_up(-usd, decimals, quote_price_wad)


def value_usd_down(amount: int, decimals: int, price_wad: int) -> int:
    return mul_div_down(amount, price_wad, _uint256(10**decimals))


def notional_usd_up(size: int, price_wad: int) -> int:
    return mul_wad_up(abs(size), price_wad)


def notional_usd_down(size: int, price_wad: int) -> int:
    return mul_wad_down(abs(size), price_wad)


def pnl_usd_floor(size: int, entry_price_wad: int, price_wad: int) -> int:
    """size * (price - entry) / 1e18, rounded toward minus infinity."""
    pnl = (size * (price_wad - entry_price_wad)) // WAD
    _to_int256(_uint256(abs(pnl)))  # the contract computes |pnl| as a uint256, then casts it
    return pnl


def entry_notional_signed(size: int, entry_price_wad: int) -> int:
    n = _to_int256(mul_wad_down(abs(size), entry_price_wad))
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
        return is_liquidatable(self)

    @property
    def meets_initial(self) -> bool:
        return meets_initial(self)

    def __add__(self, other: Health) -> Health:
        return Health(
            self.equity_usd + other.equity_usd,
            self.initial_usd + other.initial_usd,
            self.maintenance_usd + other.maintenance_usd,
        )


def tiered_requirement_usd_up(
    notional_usd: int, ratio_wad: int, tier_notional_usd: int, tier_ratio_wad: int
) -> int:
    """Requirement of `notional_usd` at `ratio_wad`, plus `tier_ratio_wad` on the part above
    `tier_notional_usd` (size-tiered margin), rounded up."""
    requirement = mul_wad_up(notional_usd, ratio_wad)
    if notional_usd > tier_notional_usd:
        requirement += mul_wad_up(notional_usd - tier_notional_usd, tier_ratio_wad)
    return _uint256(requirement)


def position_health(
    margin_usd: int,
    size: int,
    entry_price_wad: int,
    price_wad: int,
    initial_ratio_wad: int,
    maintenance_ratio_wad: int,
    tier_notional_usd: int = 0,
    tier_ratio_wad: int = 0,
) -> Health:
    notional = notional_usd_up(size, price_wad)
    tier = (tier_notional_usd, tier_ratio_wad)
    return Health(
        _int256(margin_usd + pnl_usd_floor(size, entry_price_wad, price_wad)),
        tiered_requirement_usd_up(notional, initial_ratio_wad, *tier),
        tiered_requirement_usd_up(notional, maintenance_ratio_wad, *tier),
    )


def trade_fee_fraction_up(
    spread_wad: int,
    min_fee_wad: int,
    impact_coefficient_wad: int,
    notional_usd: int,
    liquidity_usd: int,
) -> int:
    """Spread plus impact (coefficient * notional / liquidity, capped at 5 %), floored at min_fee_wad."""
    impact = MAX_IMPACT_FRACTION
    if liquidity_usd > 0:
        impact = min(
            impact, mul_div_up(mul_wad_up(notional_usd, impact_coefficient_wad), WAD, liquidity_usd)
        )
    return max(_uint256(spread_wad + impact), min_fee_wad)


def is_liquidatable(h: Health) -> bool:
    return h.equity_usd < _to_int256(h.maintenance_usd)


def meets_initial(h: Health) -> bool:
    return h.equity_usd >= _to_int256(h.initial_usd)


def fill_price_against_trader(price_wad: int, size_delta: int, fee_fraction_wad: int) -> int:
    if size_delta > 0:
        return mul_wad_up(price_wad, _uint256(WAD + fee_fraction_wad))
    return mul_wad_down(price_wad, _uint256(WAD - fee_fraction_wad))


def average_entry_against_trader(
    size: int, entry_price_wad: int, size_delta: int, fill_price_wad: int
) -> int:
    a, b = abs(size), abs(size_delta)
    weighted = _uint256(a * entry_price_wad + b * fill_price_wad)
    long = _int256(size + size_delta) > 0
    total = _uint256(a + b)
    return -(-weighted // total) if long else weighted // total


def volatility_buffer_up(
    hourly_vol_wad: int, vol_floor_wad: int, slope_wad: int, max_buffer_wad: int
) -> int:
    if hourly_vol_wad <= vol_floor_wad:
        return 0
    return min(max_buffer_wad, mul_wad_up(hourly_vol_wad - vol_floor_wad, slope_wad))


def liquidation_fraction_up(equity_usd: int, maintenance_usd: int, penalty_usd: int) -> int:
    target = mul_wad_up(maintenance_usd, LIQUIDATION_TARGET_HEALTH)
    if equity_usd <= 0 or target <= penalty_usd or equity_usd <= _to_int256(penalty_usd):
        return WAD
    if equity_usd >= _to_int256(target):
        return 0
    return min(WAD, mul_div_up(target - equity_usd, WAD, target - penalty_usd))


def scale_size_up(size: int, fraction_wad: int) -> int:
    scaled = _to_int256(min(abs(size), mul_wad_up(abs(size), fraction_wad)))
    return scaled if size > 0 else -scaled


# --- portfolio margin

PORTFOLIO_CORRELATION_WAD = 7 * 10**17
"""ConstantsLib.PORTFOLIO_CORRELATION: any two markets' correlation, its haircut taken."""


def portfolio_requirement_usd_up(signed_requirements_usd: list[int], correlation_wad: int) -> int:
    """sqrt(sum s_i^2 + correlation * sum_{i != j} s_i s_j) over the legs' signed requirements: same-side
    terms rounded up, offsets down, the root up."""
    plus = minus = 0
    for i, a in enumerate(signed_requirements_usd):
        if a == 0:
            continue
        abs_a = abs(a)
        plus = _uint256(plus + _uint256(abs_a * abs_a))
        for b in signed_requirements_usd[i + 1 :]:
            if b == 0:
                continue
            both = _uint256(abs_a * abs(b))
            if (a > 0) == (b > 0):
                plus = _uint256(plus + _uint256(2 * mul_wad_up(both, correlation_wad)))
            else:
                minus = _uint256(minus + _uint256(2 * mul_wad_down(both, correlation_wad)))
    if plus <= minus:
        return 0
    root = math.isqrt(plus - minus)
    return root if root * root == plus - minus else root + 1


# --- funding


def funding_index_delta_away_from_zero(
    price_wad: int, rate_wad: int, net_size: int, open_interest: int, elapsed_seconds: int
) -> int:
    """How far a market's funding index moves in `elapsed_seconds`: price * rate per day * skew (net size
    / open interest), rounded away from zero (the heavier side, which pays, never pays less)."""
    if net_size == 0 or rate_wad == 0 or elapsed_seconds == 0:
        return 0
    per_unit = mul_div_up(
        _uint256(mul_wad_up(price_wad, rate_wad) * elapsed_seconds),
        abs(net_size),
        _uint256(open_interest * SECONDS_PER_DAY),
    )
    delta = _to_int256(per_unit)
    return delta if net_size > 0 else -delta


def funding_pnl_usd_floor(size: int, entry_index_wad: int, index_wad: int) -> int:
    """Funding a position has been paid (+) or owes (-) since `entry_index_wad`, rounded toward minus
    infinity."""
    owed = _int256(size * _int256(index_wad - entry_index_wad))
    return _int256(-owed) // WAD


def funding_entry_toward_zero(size: int, index_wad: int) -> int:
    """`size * index` in USD, truncated toward zero (a position's share of the aggregate entry)."""
    product = _int256(size * index_wad)
    q = abs(product) // WAD
    return q if product >= 0 else -q


def traders_funding_usd_ceil(net_size: int, index_wad: int, net_funding_entry_usd: int) -> int:
    """Aggregate funding the open positions have been paid (+) or owe: entry - netSize * index, rounded
    up."""
    return _int256(net_funding_entry_usd - _int256(net_size * index_wad) // WAD)


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
