// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {ILPPool, IInsuranceFund} from "./interfaces/IProtocol.sol";
import {IMarginAdmin} from "./interfaces/IMarginAdmin.sol";
import {MarketParams, Market, CollateralConfig, Defences} from "./interfaces/IMarginVault.sol";
import {ConstantsLib} from "./libraries/ConstantsLib.sol";
import {ErrorsLib} from "./libraries/ErrorsLib.sol";
import {MarginBooks} from "./MarginBooks.sol";

/// @title MarginAdmin
/// @notice The vault's owner module: markets, their parameters and collateral tokens, each change bounded by
/// `ConstantsLib`, timelocked and one step at a time. Like `MarginLiquidator` it holds no state and is only ever
/// run by the vault, by delegatecall, on the vault's storage, after the vault has checked the caller is its owner
/// (for the `set` and `create` entry points; applying a queued change is open to anyone). Called directly it
/// would act on its own empty storage.
contract MarginAdmin is MarginBooks, IMarginAdmin {
    /// @dev `MarketParams.liquidationCapUsd`'s place in the struct.
    uint256 private constant LIQUIDATION_CAP_WORD = 13;

    constructor(IERC20 quote, IOracleAdapter oracle_, ILPPool pool_, IInsuranceFund insurance_, Defences memory defences)
        MarginBooks(quote, IERC20Metadata(address(quote)).decimals(), oracle_, pool_, insurance_, defences)
    {}

    /// @inheritdoc IMarginAdmin
    function createMarket(address asset, MarketParams calldata params) external returns (uint256 marketId) {
        _checkParams(params);
        marketId = _markets.length;
        Market storage m = _markets.push();
        (m.asset, m.fundingUpdatedAt) = (asset, uint32(block.timestamp));
        m.params = params;
        emit MarketCreated(marketId, asset);
        emit MarketParamsSet(marketId, params);
    }

    /// @inheritdoc IMarginAdmin
    function setMarketParams(uint256 marketId, MarketParams calldata params) external {
        _checkParams(params);
        _checkStep(_market(marketId).params, params);
        uint256 readyAt = block.timestamp + ConstantsLib.PARAMS_TIMELOCK;
        _pendingParams[marketId] = PendingParams(params, readyAt);
        emit MarketParamsQueued(marketId, params, readyAt);
    }

    /// @inheritdoc IMarginAdmin
    function applyMarketParams(uint256 marketId) external {
        PendingParams storage q = _pendingParams[marketId];
        _checkReady(q.readyAt);
        MarketParams memory params = q.params;
        Market storage m = _market(marketId);
        // funding up to now accrues at the rate it was due at
        _storeFunding(m, m.params.fundingRateWad == 0 ? m.fundingIndexWad : _marketState(marketId).fundingIndexWad);
        m.params = params;
        delete _pendingParams[marketId];
        emit MarketParamsSet(marketId, params);
    }

    /// @inheritdoc IMarginAdmin
    function setCollateral(address token, uint256 weightWad, uint256 liquidationDiscountWad) external {
        if (token == address(_quote)) revert ErrorsLib.UnsupportedCollateral(token);
        _bound("collateralWeight", weightWad, 1, ConstantsLib.MAX_COLLATERAL_WEIGHT);
        _bound("liquidationDiscount", liquidationDiscountWad, 1, ConstantsLib.WAD - weightWad);
        CollateralConfig memory c = _collateralConfig[token];
        if (c.enabled) {
            _boundStep(0, c.weightWad, weightWad);
            _boundStep(1, c.liquidationDiscountWad, liquidationDiscountWad);
            uint256 readyAt = block.timestamp + ConstantsLib.PARAMS_TIMELOCK;
            _pendingCollateral[token] = PendingCollateral(uint64(weightWad), uint64(liquidationDiscountWad), uint64(readyAt));
            emit CollateralQueued(token, weightWad, liquidationDiscountWad, readyAt);
            return;
        }
        uint8 decimals = IERC20Metadata(token).decimals();
        _bound("collateralDecimals", decimals, 0, ConstantsLib.USD_DECIMALS);
        _collateralTokens.push(token);
        _collateralConfig[token] = CollateralConfig(true, decimals, uint64(weightWad), uint64(liquidationDiscountWad));
        emit CollateralConfigured(token, weightWad, liquidationDiscountWad);
    }

    /// @inheritdoc IMarginAdmin
    function applyCollateral(address token) external {
        PendingCollateral memory q = _pendingCollateral[token];
        _checkReady(q.readyAt);
        (_collateralConfig[token].weightWad, _collateralConfig[token].liquidationDiscountWad) =
            (q.weightWad, q.liquidationDiscountWad);
        delete _pendingCollateral[token];
        emit CollateralConfigured(token, q.weightWad, q.liquidationDiscountWad);
    }

    function _checkReady(uint256 readyAt) internal view {
        if (readyAt == 0 || block.timestamp < readyAt) revert TimelockNotReady(readyAt, block.timestamp);
    }

    /// @dev Every field of `next` within one step of `current` (the struct's words, in field order), but the
    /// liquidation cap: from 0, no cap, any step would be one to almost nothing.
    function _checkStep(MarketParams storage current, MarketParams calldata next) internal view {
        bytes memory a = abi.encode(current);
        bytes memory b = abi.encode(next);
        for (uint256 i = 0; i < a.length / 32; ++i) {
            if (i == LIQUIDATION_CAP_WORD) continue;
            uint256 x;
            uint256 y;
            assembly ("memory-safe") {
                x := mload(add(a, add(32, mul(i, 32))))
                y := mload(add(b, add(32, mul(i, 32))))
            }
            _boundStep(i, x, y);
        }
    }

    function _boundStep(uint256 index, uint256 current, uint256 proposed) internal pure {
        uint256 step = Math.max(current / 2, ConstantsLib.MIN_PARAM_STEP);
        if (proposed > current + step || proposed + step < current) {
            revert ParamStepTooLarge(index, current, proposed);
        }
    }

    function _checkParams(MarketParams calldata p) internal pure {
        _bound("maintenanceMargin", p.maintenanceMarginWad, ConstantsLib.MIN_MAINTENANCE_MARGIN, ConstantsLib.MAX_MAINTENANCE_MARGIN);
        _bound("initialMargin", p.initialMarginWad, p.maintenanceMarginWad + 1, ConstantsLib.MAX_INITIAL_MARGIN);
        _bound("maxLeverage", p.maxLeverageWad, ConstantsLib.MIN_MAX_LEVERAGE, ConstantsLib.MAX_MAX_LEVERAGE);
        _bound(
            "liquidationPenalty",
            p.liquidationPenaltyWad,
            0,
            Math.min(ConstantsLib.MAX_LIQUIDATION_PENALTY, p.maintenanceMarginWad - 1)
        );
        _bound("keeperShare", p.keeperShareWad, 0, ConstantsLib.MAX_KEEPER_SHARE);
        _bound("spread", p.spreadWad, 0, ConstantsLib.MAX_SPREAD);
        _bound("impactCoefficient", p.impactCoefficientWad, 0, ConstantsLib.MAX_IMPACT_COEFFICIENT);
        _bound("openInterestCap", p.openInterestCapWad, 1, ConstantsLib.MAX_OI_CAP);
        _bound("minNotional", p.minNotionalUsd, 0, ConstantsLib.MAX_MIN_NOTIONAL_USD);
        _bound("volFloor", p.volFloorWad, 0, ConstantsLib.MAX_VOL_FLOOR);
        _bound("volSlope", p.volSlopeWad, 0, ConstantsLib.MAX_VOL_SLOPE);
        _bound("maxBuffer", p.maxBufferWad, 0, ConstantsLib.MAX_MAINTENANCE_BUFFER);
        _bound("minFee", p.minFeeWad, 0, ConstantsLib.MAX_MIN_FEE);
        _bound("liquidationCap", p.liquidationCapUsd, 0, ConstantsLib.MAX_LIQUIDATION_CAP_USD);
        _bound("tierNotional", p.tierNotionalUsd, 0, ConstantsLib.MAX_TIER_NOTIONAL_USD);
        _bound("tierMargin", p.tierMarginWad, 0, ConstantsLib.MAX_TIER_MARGIN);
        _bound("fundingRate", p.fundingRateWad, 0, ConstantsLib.MAX_FUNDING_RATE);
        _bound("poolLossCap", p.poolLossCapWad, 0, ConstantsLib.MAX_POOL_LOSS_CAP);
    }

    function _bound(bytes32 name, uint256 value, uint256 lo, uint256 hi) internal pure {
        if (value < lo || value > hi) revert ParamOutOfBounds(name, value, lo, hi);
    }
}
