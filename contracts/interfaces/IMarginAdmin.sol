// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketParams} from "./IMarginVault.sol";

/// @title IMarginAdmin
/// @notice The owner's entry points (markets, their parameters, collateral tokens), their errors and events. The
/// vault checks the caller and routes them to its `MarginAdmin` module (delegatecall, the vault's storage), as
/// it routes liquidations to `MarginLiquidator`: modules by domain, as Euler's EVault, keep the vault under
/// EIP-170 with room to grow.
interface IMarginAdmin {
    /// @notice Thrown when a parameter is outside the hard bounds of `ConstantsLib`.
    error ParamOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);
    /// @notice Thrown when applying a queued change before its timelock has passed (or with none queued).
    error TimelockNotReady(uint256 readyAt, uint256 nowTimestamp);
    /// @notice Thrown when one change moves a parameter (field `index` of its struct) by more than one step.
    error ParamStepTooLarge(uint256 index, uint256 current, uint256 proposed);

    /// @notice A market was created for `asset` (the oracle key of its price).
    event MarketCreated(uint256 indexed marketId, address indexed asset);
    /// @notice A market's parameters were set (at creation or later by the owner).
    event MarketParamsSet(uint256 indexed marketId, MarketParams params);
    /// @notice A cross collateral token was enabled or re-weighted.
    event CollateralConfigured(address indexed token, uint256 weightWad, uint256 liquidationDiscountWad);
    /// @notice New parameters for a market were queued; anyone may apply them from `readyAt` on.
    event MarketParamsQueued(uint256 indexed marketId, MarketParams params, uint256 readyAt);
    /// @notice A re-weighting of an enabled collateral token was queued; it applies from `readyAt` on.
    event CollateralQueued(address indexed token, uint256 weightWad, uint256 liquidationDiscountWad, uint256 readyAt);

    /// @notice Create a market for `asset` (owner only).
    function createMarket(address asset, MarketParams calldata params) external returns (uint256 marketId);
    /// @notice Queue new parameters for a market (owner only); anyone may apply them `PARAMS_TIMELOCK` later. A
    /// new queue replaces the pending one.
    function setMarketParams(uint256 marketId, MarketParams calldata params) external;
    /// @notice Apply a market's queued parameters once their timelock has passed. The funding accrued so far is
    /// stored first, at the rate it was due at: with funding on, the market's price must be readable.
    function applyMarketParams(uint256 marketId) external;
    /// @notice Enable a non-quote collateral token of cross accounts (at once), or queue a re-weighting of an
    /// enabled one (owner only; applied by `applyCollateral` after `PARAMS_TIMELOCK`, one bounded step per change).
    function setCollateral(address token, uint256 weightWad, uint256 liquidationDiscountWad) external;
    /// @notice Apply a queued collateral re-weighting once its timelock has passed.
    function applyCollateral(address token) external;
}
