// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title EventsLib
/// @notice Every event of the vault but the liquidation's (in `IMarginLiquidation`), the owner's (in
/// `IMarginAdmin`) and the cross accounts' (in `IMarginCross`). Token amounts are in the token's own decimals, prices and USD in wad, sizes in base-asset
/// wad (+ long, - short).
library EventsLib {
    /// @notice `owner` took the quote tokens that full liquidations of its positions left it.
    event RemainderClaimed(address indexed owner, uint256 amount);

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
}
