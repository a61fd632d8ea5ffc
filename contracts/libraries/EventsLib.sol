// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MarketParams} from "../interfaces/IMarginVault.sol";

/// @title EventsLib
/// @notice Every event of the vault. Token amounts are in the token's own decimals, prices and USD in wad,
/// sizes in base-asset wad (+ long, - short).
library EventsLib {
    /// @notice A market was created for `asset` (the oracle key of its price).
    event MarketCreated(uint256 indexed marketId, address indexed asset);
    /// @notice A market's parameters were set (at creation or later by the owner).
    event MarketParamsSet(uint256 indexed marketId, MarketParams params);
    /// @notice A cross collateral token was enabled or re-weighted.
    event CollateralConfigured(address indexed token, uint256 weightWad, uint256 liquidationDiscountWad);

    /// @notice An isolated position was opened at `fillPriceWad` with `margin` quote tokens.
    event IsolatedOpened(
        uint256 indexed positionId, address indexed owner, uint256 indexed marketId, int256 size, uint256 fillPriceWad, uint256 margin
    );
    /// @notice Margin was added (delta > 0, by `by`) or removed (delta < 0, by the owner).
    event IsolatedMarginChanged(uint256 indexed positionId, address indexed by, int256 delta, uint256 margin);
    /// @notice An isolated position was grown or reduced; a reduce realises `realizedPnl` into the margin.
    event IsolatedModified(
        uint256 indexed positionId,
        int256 sizeDelta,
        int256 newSize,
        uint256 entryPriceWad,
        uint256 fillPriceWad,
        int256 realizedPnl,
        uint256 margin
    );
    /// @notice The owner closed an isolated position; `payout` quote tokens went to the owner.
    event IsolatedClosed(uint256 indexed positionId, uint256 fillPriceWad, int256 realizedPnl, uint256 payout);
    /// @notice A keeper liquidated `closedSize` of an isolated position at the oracle price.
    /// @param remaining margin left in the position (partial) or paid back to the owner (full).
    event IsolatedLiquidated(
        uint256 indexed positionId,
        address indexed owner,
        address indexed keeper,
        int256 closedSize,
        uint256 priceWad,
        int256 realizedPnl,
        uint256 keeperReward,
        uint256 insuranceFee,
        uint256 remaining,
        bool full
    );

    /// @notice Collateral was deposited into a cross account.
    event CollateralDeposited(address indexed account, address indexed token, uint256 amount);
    /// @notice Collateral was withdrawn from a cross account.
    event CollateralWithdrawn(address indexed account, address indexed token, uint256 amount);
    /// @notice A cross account traded; a reduce realises `realizedPnl` into its quote balance.
    event CrossTraded(
        address indexed account,
        uint256 indexed marketId,
        int256 sizeDelta,
        int256 newSize,
        uint256 entryPriceWad,
        uint256 fillPriceWad,
        int256 realizedPnl
    );
    /// @notice One market's position of a cross account was (partly) closed by a liquidation.
    event CrossPositionLiquidated(
        address indexed account, uint256 indexed marketId, int256 closedSize, uint256 priceWad, int256 realizedPnlUsd
    );
    /// @notice A cross account was liquidated; `fractionWad` of its exposure was targeted.
    event CrossLiquidated(
        address indexed account,
        address indexed keeper,
        uint256 fractionWad,
        int256 realizedPnl,
        uint256 keeperReward,
        uint256 insuranceFee,
        uint256 remainingQuote,
        bool full
    );
    /// @notice A liquidation sold `amount` of an account's collateral `token` to the keeper for `proceeds`
    /// quote tokens (oracle price less the token's liquidation discount): waterfall step 1.
    event CollateralSeized(address indexed account, address indexed token, address indexed buyer, uint256 amount, uint256 proceeds);
    /// @notice A liquidation left `badDebt` quote tokens unpaid by the account: the insurance fund paid
    /// `fromInsurance` (step 2) and the LP pool absorbed `fromPool` (step 3). `subject` is the position id
    /// (isolated) or the account address as uint (cross).
    event BadDebtCovered(uint256 indexed subject, bool isolated, uint256 badDebt, uint256 fromInsurance, uint256 fromPool);
}
