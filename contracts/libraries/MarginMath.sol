// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SignedMath} from "@openzeppelin/contracts/utils/math/SignedMath.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ConstantsLib} from "./ConstantsLib.sol";

/// @notice Equity and requirements of a position or account, all in USD wad.
struct Health {
    int256 equityUsd;
    uint256 initialUsd;
    uint256 maintenanceUsd;
}

/// @title MarginMath
/// @notice The one margin-math core shared by isolated positions, cross accounts and the views.
/// @dev Every function that rounds says which way in its name. Callers pick the side that protects
/// the protocol: requirements and charges round up, equity, payouts and credits round down.
library MarginMath {
    uint256 private constant WAD = ConstantsLib.WAD;

    // --- plain fixed point --------------------------------------------------------------------

    function mulDivDown(uint256 x, uint256 y, uint256 d) internal pure returns (uint256) {
        return Math.mulDiv(x, y, d);
    }

    function mulDivUp(uint256 x, uint256 y, uint256 d) internal pure returns (uint256) {
        return Math.mulDiv(x, y, d, Math.Rounding.Ceil);
    }

    function mulWadDown(uint256 x, uint256 y) internal pure returns (uint256) {
        return Math.mulDiv(x, y, WAD);
    }

    function mulWadUp(uint256 x, uint256 y) internal pure returns (uint256) {
        return Math.mulDiv(x, y, WAD, Math.Rounding.Ceil);
    }

    // --- token <-> USD --------------------------------------------------------------------------

    /// @notice Quote-token amount to USD wad at the quote's price (`quotePriceWad`, USD per whole token: 1e18 at
    /// par, where the result is exact), rounded down: what an account holds is never overstated.
    function quoteToUsdDown(uint256 amount, uint8 decimals, uint256 quotePriceWad) internal pure returns (uint256) {
        return valueUsdDown(amount, decimals, quotePriceWad);
    }

    /// @notice As `quoteToUsdDown`, rounded up: what an account owes is never understated.
    function quoteToUsdUp(uint256 amount, uint8 decimals, uint256 quotePriceWad) internal pure returns (uint256) {
        return mulDivUp(amount, quotePriceWad, 10 ** decimals);
    }

    /// @notice USD wad to quote tokens at the quote's price, rounded down: what the protocol pays.
    function usdToQuoteDown(uint256 usd, uint8 decimals, uint256 quotePriceWad) internal pure returns (uint256) {
        return mulDivDown(usd, 10 ** decimals, quotePriceWad);
    }

    /// @notice USD wad to quote tokens at the quote's price, rounded up: what the protocol takes.
    function usdToQuoteUp(uint256 usd, uint8 decimals, uint256 quotePriceWad) internal pure returns (uint256) {
        return mulDivUp(usd, 10 ** decimals, quotePriceWad);
    }

    /// @notice Signed USD to quote tokens at the quote's price, rounded toward minus infinity: gains down,
    /// losses up.
    function signedUsdToQuoteFloor(int256 usd, uint8 decimals, uint256 quotePriceWad) internal pure returns (int256) {
        if (usd >= 0) return int256(usdToQuoteDown(uint256(usd), decimals, quotePriceWad));
        return -int256(usdToQuoteUp(uint256(-usd), decimals, quotePriceWad));
    }

    /// @notice Value of `amount` of a token with `decimals` at `priceWad` (USD per whole token).
    function valueUsdDown(uint256 amount, uint8 decimals, uint256 priceWad) internal pure returns (uint256) {
        return mulDivDown(amount, priceWad, 10 ** decimals);
    }

    // --- positions ------------------------------------------------------------------------------

    function notionalUsdUp(int256 size, uint256 priceWad) internal pure returns (uint256) {
        return mulWadUp(SignedMath.abs(size), priceWad);
    }

    function notionalUsdDown(int256 size, uint256 priceWad) internal pure returns (uint256) {
        return mulWadDown(SignedMath.abs(size), priceWad);
    }

    /// @notice Unrealised PnL of `size` entered at `entryPriceWad`, marked at `priceWad`, rounded
    /// toward minus infinity (gains down, losses up).
    function pnlUsdFloor(int256 size, uint256 entryPriceWad, uint256 priceWad) internal pure returns (int256) {
        uint256 absSize = SignedMath.abs(size);
        bool priceUp = priceWad >= entryPriceWad;
        uint256 diff = priceUp ? priceWad - entryPriceWad : entryPriceWad - priceWad;
        if ((size > 0) == priceUp || diff == 0) return SafeCast.toInt256(mulWadDown(absSize, diff));
        return -SafeCast.toInt256(mulWadUp(absSize, diff));
    }

    /// @notice The signed USD amount `size * entryPrice`, used for aggregate open-interest PnL.
    /// @dev Rounded down in magnitude; the vault removes exactly what it added, so nothing drifts.
    function entryNotionalSigned(int256 size, uint256 entryPriceWad) internal pure returns (int256) {
        int256 n = SafeCast.toInt256(mulWadDown(SignedMath.abs(size), entryPriceWad));
        return size >= 0 ? n : -n;
    }

    function requirementUsdUp(uint256 notionalUsd, uint256 ratioWad) internal pure returns (uint256) {
        return mulWadUp(notionalUsd, ratioWad);
    }

    /// @notice Requirement of `notionalUsd` at `ratioWad`, plus `tierRatioWad` on the part above
    /// `tierNotionalUsd` (size-tiered margin), rounded up.
    function tieredRequirementUsdUp(uint256 notionalUsd, uint256 ratioWad, uint256 tierNotionalUsd, uint256 tierRatioWad)
        internal
        pure
        returns (uint256 requirement)
    {
        requirement = mulWadUp(notionalUsd, ratioWad);
        if (notionalUsd > tierNotionalUsd) requirement += mulWadUp(notionalUsd - tierNotionalUsd, tierRatioWad);
    }

    /// @notice Health of one position holding `marginUsd` of its own; requirements with the size tier.
    function positionHealth(
        int256 marginUsd,
        int256 size,
        uint256 entryPriceWad,
        uint256 priceWad,
        uint256 initialRatioWad,
        uint256 maintenanceRatioWad,
        uint256 tierNotionalUsd,
        uint256 tierRatioWad
    ) internal pure returns (Health memory h) {
        uint256 notional = notionalUsdUp(size, priceWad);
        h.equityUsd = marginUsd + pnlUsdFloor(size, entryPriceWad, priceWad);
        h.initialUsd = tieredRequirementUsdUp(notional, initialRatioWad, tierNotionalUsd, tierRatioWad);
        h.maintenanceUsd = tieredRequirementUsdUp(notional, maintenanceRatioWad, tierNotionalUsd, tierRatioWad);
    }

    function isLiquidatable(Health memory h) internal pure returns (bool) {
        return h.equityUsd < SafeCast.toInt256(h.maintenanceUsd);
    }

    function meetsInitial(Health memory h) internal pure returns (bool) {
        return h.equityUsd >= SafeCast.toInt256(h.initialUsd);
    }

    // --- trading --------------------------------------------------------------------------------

    /// @notice Price a trade fills at: buys pay above the oracle, sells receive below it.
    /// @param feeFractionWad spread plus price impact, as a fraction of price.
    function fillPriceAgainstTrader(uint256 priceWad, int256 sizeDelta, uint256 feeFractionWad)
        internal
        pure
        returns (uint256)
    {
        if (sizeDelta > 0) return mulWadUp(priceWad, WAD + feeFractionWad);
        return mulWadDown(priceWad, WAD - feeFractionWad);
    }

    /// @notice Fee of a trade as a fraction of price: spread plus size-dependent impact
    /// (`coefficient * notional / liquidity`, capped at 5 %; the cap when there is no liquidity), floored at
    /// `minFeeWad`. Rounded up.
    function tradeFeeFractionUp(
        uint256 spreadWad,
        uint256 minFeeWad,
        uint256 impactCoefficientWad,
        uint256 notionalUsd,
        uint256 liquidityUsd
    ) internal pure returns (uint256) {
        uint256 impact = ConstantsLib.MAX_IMPACT_FRACTION;
        if (liquidityUsd > 0) {
            impact = Math.min(impact, mulDivUp(mulWadUp(notionalUsd, impactCoefficientWad), WAD, liquidityUsd));
        }
        return Math.max(spreadWad + impact, minFeeWad);
    }

    /// @notice Size-weighted entry price after growing a position, rounded against the trader
    /// (up for a long, down for a short).
    function averageEntryAgainstTrader(int256 size, uint256 entryPriceWad, int256 sizeDelta, uint256 fillPriceWad)
        internal
        pure
        returns (uint256)
    {
        uint256 a = SignedMath.abs(size);
        uint256 b = SignedMath.abs(sizeDelta);
        uint256 weighted = a * entryPriceWad + b * fillPriceWad;
        return size + sizeDelta > 0 ? Math.ceilDiv(weighted, a + b) : weighted / (a + b);
    }

    // --- risk -----------------------------------------------------------------------------------

    /// @notice Maintenance (and initial) buffer from measured volatility:
    /// `min(maxBuffer, slope * max(0, hourlyVol - volFloor))`, rounded up.
    function volatilityBufferUp(uint256 hourlyVolWad, uint256 volFloorWad, uint256 slopeWad, uint256 maxBufferWad)
        internal
        pure
        returns (uint256)
    {
        if (hourlyVolWad <= volFloorWad) return 0;
        return Math.min(maxBufferWad, mulWadUp(hourlyVolWad - volFloorWad, slopeWad));
    }

    /// @notice Smallest fraction f of the exposure to close so that afterwards
    /// `equity - f * penalty >= TARGET * (1 - f) * maintenance`; WAD (close all) when no f < 1 does.
    /// @param penaltyUsd penalty if the whole exposure were closed.
    function liquidationFractionUp(int256 equityUsd, uint256 maintenanceUsd, uint256 penaltyUsd)
        internal
        pure
        returns (uint256)
    {
        uint256 target = mulWadUp(maintenanceUsd, ConstantsLib.LIQUIDATION_TARGET_HEALTH);
        if (equityUsd <= 0 || target <= penaltyUsd || equityUsd <= SafeCast.toInt256(penaltyUsd)) return WAD;
        if (equityUsd >= SafeCast.toInt256(target)) return 0;
        return Math.min(WAD, mulDivUp(target - uint256(equityUsd), WAD, target - penaltyUsd));
    }

    // --- portfolio margin ---------------------------------------------------------------------

    /// @notice An account's requirement on its net risk, from its legs' signed requirements (USD; + long,
    /// - short): sqrt(sum_i s_i^2 + correlation * sum_{i != j} s_i s_j), the spread of correlated exposures
    /// (as SPAN's inter-market credit): opposite legs offset each other by the correlation, same-side legs
    /// add up. Same-side terms round up, offsets down, the root up. With correlation 0 it is the root of the
    /// sum of squares; it never exceeds the sum of the legs' requirements.
    function portfolioRequirementUsdUp(int256[] memory signedRequirementsUsd, uint256 correlationWad)
        internal
        pure
        returns (uint256)
    {
        uint256 plus;
        uint256 minus;
        uint256 n = signedRequirementsUsd.length;
        for (uint256 i = 0; i < n; ++i) {
            int256 a = signedRequirementsUsd[i];
            if (a == 0) continue;
            uint256 absA = SignedMath.abs(a);
            plus += absA * absA;
            for (uint256 j = i + 1; j < n; ++j) {
                int256 b = signedRequirementsUsd[j];
                if (b == 0) continue;
                uint256 both = absA * SignedMath.abs(b);
                if ((a > 0) == (b > 0)) plus += 2 * mulWadUp(both, correlationWad);
                else minus += 2 * mulWadDown(both, correlationWad);
            }
        }
        return plus > minus ? Math.sqrt(plus - minus, Math.Rounding.Ceil) : 0;
    }

    // --- funding ------------------------------------------------------------------------------

    /// @notice How far a market's funding index (USD per unit of size, wad) moves in `elapsedSeconds`:
    /// price * `rateWad` per day * skew, where skew = netSize / open interest (all on one side: the full
    /// rate), rounded away from zero so that the heavier side, which pays, never pays less than its share.
    /// Positive: longs pay shorts and the pool; negative: shorts pay.
    function fundingIndexDeltaAwayFromZero(
        uint256 priceWad,
        uint256 rateWad,
        int256 netSize,
        uint256 openInterest,
        uint256 elapsedSeconds
    ) internal pure returns (int256) {
        if (netSize == 0 || rateWad == 0 || elapsedSeconds == 0) return 0;
        uint256 perUnit =
            mulDivUp(mulWadUp(priceWad, rateWad) * elapsedSeconds, SignedMath.abs(netSize), openInterest * 1 days);
        int256 delta = SafeCast.toInt256(perUnit);
        return netSize > 0 ? delta : -delta;
    }

    /// @notice Funding a position of `size` has been paid (positive) or owes (negative) since the index was
    /// `entryIndexWad`, USD wad, rounded toward minus infinity (owed up, paid down).
    function fundingPnlUsdFloor(int256 size, int256 entryIndexWad, int256 indexWad) internal pure returns (int256) {
        return _divWadFloor(-(size * (indexWad - entryIndexWad)));
    }

    /// @notice `size * indexWad` in USD, truncated toward zero: a position's share of its market's aggregate
    /// funding entry (the vault removes exactly what it added, so nothing drifts).
    function fundingEntryTowardZero(int256 size, int256 indexWad) internal pure returns (int256) {
        return (size * indexWad) / int256(WAD);
    }

    /// @notice The funding every open position of a market has been paid (positive) or owes since its entry,
    /// in aggregate: netFundingEntry - netSize * index, rounded up (the pool's debt to traders is never
    /// understated).
    function tradersFundingUsdCeil(int256 netSize, int256 indexWad, int256 netFundingEntryUsd)
        internal
        pure
        returns (int256)
    {
        return netFundingEntryUsd - _divWadFloor(netSize * indexWad);
    }

    function _divWadFloor(int256 x) private pure returns (int256 q) {
        q = x / int256(WAD);
        if (x < 0 && q * int256(WAD) != x) q -= 1;
    }

    /// @notice `fractionWad` of `size`, rounded up in magnitude (close more, never less), capped at size.
    function scaleSizeUp(int256 size, uint256 fractionWad) internal pure returns (int256) {
        uint256 absSize = SignedMath.abs(size);
        int256 scaled = int256(Math.min(absSize, mulWadUp(absSize, fractionWad)));
        return size > 0 ? scaled : -scaled;
    }
}
