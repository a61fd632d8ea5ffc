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
    /// @notice Thrown when deleveraging a position whose side of `marketId` owes no deficit.
    error NothingToDeleverage(uint256 marketId, bool long);
    /// @notice Thrown when deleveraging a position with no profit at the oracle price.
    error NotProfitable(int256 pnlUsd);

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
    /// `fromInsurance` (step 2), the LP pool absorbed `fromPool` (step 3, up to its loss cap in the market) and
    /// `toDeleverage` is left for the profitable positions on the other side of `marketId` (step 4,
    /// auto-deleveraging). `subject` is the position id (isolated) or the account address as uint (cross).
    event BadDebtCovered(
        uint256 indexed subject,
        bool isolated,
        uint256 badDebt,
        uint256 fromInsurance,
        uint256 fromPool,
        uint256 toDeleverage,
        uint256 marketId
    );
    /// @notice Auto-deleveraging closed `closedSize` of a profitable position (`positionId`, or 0 for `owner`'s
    /// cross leg) in `marketId` at the oracle price `priceWad`; of the closed part's profit, `haircut` quote
    /// tokens went to the market's deficit and the rest, with the funding settled, to the owner (`realizedPnl`).
    event Deleveraged(
        uint256 indexed marketId,
        uint256 indexed positionId,
        address indexed owner,
        int256 closedSize,
        uint256 priceWad,
        int256 realizedPnl,
        uint256 haircut
    );

    /// @notice Liquidate an isolated position whose equity is below maintenance: partial when closing a part
    /// restores equity >= 1.25 x maintenance, full otherwise. The close fills as an owner's close of the
    /// same size would (spread, impact, fee floor) and the penalty comes on top, so a liquidation never
    /// leaves the owner's side (owner plus keeper) more than closing would.
    function liquidateIsolated(uint256 positionId) external;

    /// @notice Liquidate a cross account whose equity is below maintenance; see `liquidateIsolated`. If the
    /// quote balance cannot pay, the account's priced collateral is sold to the keeper at oracle price less
    /// its discount (the keeper must have approved the quote tokens).
    function liquidateCross(address account) external;

    /// @notice Auto-deleverage a profitable isolated position on the side of its market that owes a deficit
    /// (`deleverageDeficit`): close the smallest part whose profit at the oracle price covers the deficit
    /// (all of it if none does), with no fee and no penalty; that part's profit, up to the deficit, pays the
    /// deficit. Anyone may call it; which position goes first is the caller's choice (the simulation's
    /// deleverager ranks by profit and leverage, as Hyperliquid and Binance do). A full close credits the
    /// owner's `claimableQuote`.
    function deleverageIsolated(uint256 positionId) external;

    /// @notice `deleverageIsolated` for `account`'s cross leg in `marketId`; the rest goes to its quote balance.
    function deleverageCross(address account, uint256 marketId) external;
}
