// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice What the LP pool and the insurance fund need of the vault.
interface IMarginVaultForPool {
    /// @notice Net unrealised PnL of every open position, funding included, USD wad, traders' side (positive:
    /// pool owes), rounded up (against the pool), less the deleveraging deficit (bad debt past the pool's loss
    /// cap, which the profitable side owes the pool out of that PnL).
    function unrealizedTraderPnlUsd() external view returns (int256);

    /// @notice Pool cash, USD wad, that open interest requires under each market's cap.
    function requiredPoolValueUsd() external view returns (uint256);

    /// @notice The quote token's USD price, wad: its feed's (checked like every feed), or 1e18 while the
    /// oracle has none for it. The vault values margin, balances and pool cash at it.
    function quotePriceWad() external view returns (uint256);
}

/// @notice The LP pool, as the vault uses it.
interface ILPPool {
    /// @notice Pay `amount` quote tokens to the vault (trader profit, bad debt the LPs absorb).
    function payVault(uint256 amount) external;

    function totalAssets() external view returns (uint256);

    /// @notice Quote tokens that trades are priced and capped against: the pool's cash less deposits
    /// younger than the deposit cooldown (liquidity that could still leave, or that just arrived to
    /// lower one trade's impact).
    function tradingLiquidity() external view returns (uint256);
}

/// @notice The insurance fund, as the vault uses it.
interface IInsuranceFund {
    /// @notice Send up to `amount` quote tokens to the vault; returns what was sent.
    function cover(uint256 amount) external returns (uint256 covered);
}
