// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarginMath, Health} from "../libraries/MarginMath.sol";

/// @title MarginMathHarness
/// @notice Test-only: every internal function of MarginMath as an external pure function of the same
/// name and signature, so tests/test_margin_math.py can compare it with simulation/margin_math.py.
/// @dev Never deployed by simulation/deploy.py; the test deploys it on its own.
contract MarginMathHarness {
    function mulDivDown(uint256 x, uint256 y, uint256 d) external pure returns (uint256) {
        return MarginMath.mulDivDown(x, y, d);
    }

    function mulDivUp(uint256 x, uint256 y, uint256 d) external pure returns (uint256) {
        return MarginMath.mulDivUp(x, y, d);
    }

    function mulWadDown(uint256 x, uint256 y) external pure returns (uint256) {
        return MarginMath.mulWadDown(x, y);
    }

    function mulWadUp(uint256 x, uint256 y) external pure returns (uint256) {
        return MarginMath.mulWadUp(x, y);
    }

    function quoteToUsdDown(uint256 amount, uint8 decimals, uint256 quotePriceWad) external pure returns (uint256) {
        return MarginMath.quoteToUsdDown(amount, decimals, quotePriceWad);
    }

    function quoteToUsdUp(uint256 amount, uint8 decimals, uint256 quotePriceWad) external pure returns (uint256) {
        return MarginMath.quoteToUsdUp(amount, decimals, quotePriceWad);
    }

    function usdToQuoteDown(uint256 usd, uint8 decimals, uint256 quotePriceWad) external pure returns (uint256) {
        return MarginMath.usdToQuoteDown(usd, decimals, quotePriceWad);
    }

    function usdToQuoteUp(uint256 usd, uint8 decimals, uint256 quotePriceWad) external pure returns (uint256) {
        return MarginMath.usdToQuoteUp(usd, decimals, quotePriceWad);
    }

    function signedUsdToQuoteFloor(int256 usd, uint8 decimals, uint256 quotePriceWad) external pure returns (int256) {
        return MarginMath.signedUsdToQuoteFloor(usd, decimals, quotePriceWad);
    }

    function valueUsdDown(uint256 amount, uint8 decimals, uint256 priceWad) external pure returns (uint256) {
        return MarginMath.valueUsdDown(amount, decimals, priceWad);
    }

    function notionalUsdUp(int256 size, uint256 priceWad) external pure returns (uint256) {
        return MarginMath.notionalUsdUp(size, priceWad);
    }

    function notionalUsdDown(int256 size, uint256 priceWad) external pure returns (uint256) {
        return MarginMath.notionalUsdDown(size, priceWad);
    }

    function pnlUsdFloor(int256 size, uint256 entryPriceWad, uint256 priceWad) external pure returns (int256) {
        return MarginMath.pnlUsdFloor(size, entryPriceWad, priceWad);
    }

    function entryNotionalSigned(int256 size, uint256 entryPriceWad) external pure returns (int256) {
        return MarginMath.entryNotionalSigned(size, entryPriceWad);
    }

    function requirementUsdUp(uint256 notionalUsd, uint256 ratioWad) external pure returns (uint256) {
        return MarginMath.requirementUsdUp(notionalUsd, ratioWad);
    }

    function tieredRequirementUsdUp(uint256 notionalUsd, uint256 ratioWad, uint256 tierNotionalUsd, uint256 tierRatioWad)
        external
        pure
        returns (uint256)
    {
        return MarginMath.tieredRequirementUsdUp(notionalUsd, ratioWad, tierNotionalUsd, tierRatioWad);
    }

    function positionHealth(
        int256 marginUsd,
        int256 size,
        uint256 entryPriceWad,
        uint256 priceWad,
        uint256 initialRatioWad,
        uint256 maintenanceRatioWad,
        uint256 tierNotionalUsd,
        uint256 tierRatioWad
    ) external pure returns (Health memory) {
        return MarginMath.positionHealth(
            marginUsd, size, entryPriceWad, priceWad, initialRatioWad, maintenanceRatioWad, tierNotionalUsd, tierRatioWad
        );
    }

    function isLiquidatable(Health memory h) external pure returns (bool) {
        return MarginMath.isLiquidatable(h);
    }

    function meetsInitial(Health memory h) external pure returns (bool) {
        return MarginMath.meetsInitial(h);
    }

    function fillPriceAgainstTrader(uint256 priceWad, int256 sizeDelta, uint256 feeFractionWad)
        external
        pure
        returns (uint256)
    {
        return MarginMath.fillPriceAgainstTrader(priceWad, sizeDelta, feeFractionWad);
    }

    function averageEntryAgainstTrader(int256 size, uint256 entryPriceWad, int256 sizeDelta, uint256 fillPriceWad)
        external
        pure
        returns (uint256)
    {
        return MarginMath.averageEntryAgainstTrader(size, entryPriceWad, sizeDelta, fillPriceWad);
    }

    function volatilityBufferUp(uint256 hourlyVolWad, uint256 volFloorWad, uint256 slopeWad, uint256 maxBufferWad)
        external
        pure
        returns (uint256)
    {
        return MarginMath.volatilityBufferUp(hourlyVolWad, volFloorWad, slopeWad, maxBufferWad);
    }

    function liquidationFractionUp(int256 equityUsd, uint256 maintenanceUsd, uint256 penaltyUsd)
        external
        pure
        returns (uint256)
    {
        return MarginMath.liquidationFractionUp(equityUsd, maintenanceUsd, penaltyUsd);
    }

    function scaleSizeUp(int256 size, uint256 fractionWad) external pure returns (int256) {
        return MarginMath.scaleSizeUp(size, fractionWad);
    }

    function tradeFeeFractionUp(
        uint256 spreadWad,
        uint256 minFeeWad,
        uint256 impactCoefficientWad,
        uint256 notionalUsd,
        uint256 liquidityUsd
    ) external pure returns (uint256) {
        return MarginMath.tradeFeeFractionUp(spreadWad, minFeeWad, impactCoefficientWad, notionalUsd, liquidityUsd);
    }
    function fundingIndexDeltaAwayFromZero(
        uint256 priceWad,
        uint256 rateWad,
        int256 netSize,
        uint256 openInterest,
        uint256 elapsedSeconds
    ) external pure returns (int256) {
        return MarginMath.fundingIndexDeltaAwayFromZero(priceWad, rateWad, netSize, openInterest, elapsedSeconds);
    }

    function fundingPnlUsdFloor(int256 size, int256 entryIndexWad, int256 indexWad) external pure returns (int256) {
        return MarginMath.fundingPnlUsdFloor(size, entryIndexWad, indexWad);
    }

    function fundingEntryTowardZero(int256 size, int256 indexWad) external pure returns (int256) {
        return MarginMath.fundingEntryTowardZero(size, indexWad);
    }

    function tradersFundingUsdCeil(int256 netSize, int256 indexWad, int256 netFundingEntryUsd)
        external
        pure
        returns (int256)
    {
        return MarginMath.tradersFundingUsdCeil(netSize, indexWad, netFundingEntryUsd);
    }

    function portfolioRequirementUsdUp(int256[] memory signedRequirementsUsd, uint256 correlationWad)
        external
        pure
        returns (uint256)
    {
        return MarginMath.portfolioRequirementUsdUp(signedRequirementsUsd, correlationWad);
    }
}
