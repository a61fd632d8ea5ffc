// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IMarginLiquidation
/// @notice Liquidation entry points, errors and events. The vault routes the two entry points to its
/// `MarginLiquidator` module (delegatecall, the vault's storage), which keeps the vault under EIP-170.
interface IMarginLiquidation {
    /// @notice Thrown when an owner tries to liquidate their own position or account.
    error SelfLiquidation(address owner);
    /// @notice Thrown when a liquidation targets a position or account whose equity is at or above maintenance.
    error NotLiquidatable(int256 equityUsd, uint256 maintenanceUsd);
    /// @notice Thrown when liquidations already closed `capUsd` of notional in `marketId` this block.
    error LiquidationCapReached(uint256 marketId, uint256 capUsd);

    /// @notice A keeper liquidated `closedSize` of an isolated position at the fill price a close of that size gets
    /// (oracle price less spread and impact); `priceWad` is the oracle price.
    /// @param remaining margin left in the position (partial) or credited to the owner to claim (full).
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

    /// @notice Liquidate an isolated position whose equity is below maintenance: partial when closing a part
    /// restores equity >= 1.25 x maintenance, full otherwise. The close fills as an owner's close of the
    /// same size would (spread, impact, fee floor) and the penalty comes on top, so a liquidation never
    /// leaves the owner's side (owner plus keeper) more than closing would.
    function liquidateIsolated(uint256 positionId) external;

    /// @notice Liquidate a cross account whose equity is below maintenance; see `liquidateIsolated`. If the
    /// quote balance cannot pay, the account's priced collateral is sold to the keeper at oracle price less
    /// its discount (the keeper must have approved the quote tokens).
    function liquidateCross(address account) external;
}
