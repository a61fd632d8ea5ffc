// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IMarginCross
/// @notice Cross accounts' entry points, their own errors and events. The vault routes them to its
/// `MarginCross` module (delegatecall, the vault's storage): one module per margin mode, as the issue of the
/// vault's size asks, with the modes that margin an account as a whole (cross, portfolio) in it.
interface IMarginCross {
    /// @notice Thrown when depositing a token that is neither the quote nor an enabled collateral.
    error UnsupportedCollateral(address token);
    /// @notice Thrown when a realised loss is larger than the account's quote balance.
    error InsufficientQuote(uint256 neededTokens, uint256 availableTokens);

    /// @notice A cross account switched portfolio margin on or off.
    event PortfolioMarginSet(address indexed account, bool on);

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

    /// @notice Deposit quote tokens or an enabled collateral token into the caller's cross account.
    function depositCollateral(address token, uint256 amount) external;
    /// @notice Withdraw collateral while the account stays above its initial requirement.
    function withdrawCollateral(address token, uint256 amount) external;
    /// @notice Trade `sizeDelta` in `marketId` from the caller's cross account. A reduce realises PnL into
    /// the quote balance, which must be able to pay a realised loss; every trade realises the funding accrued.
    function tradeCross(uint256 marketId, int256 sizeDelta) external;
    /// @notice Margin the caller's cross account on its net risk (portfolio margin: legs on opposite sides of
    /// correlated markets offset each other, `MarginMath.portfolioRequirementUsdUp`) or leg by leg. Switching
    /// it off raises the requirement: the account must then still meet its initial requirement.
    function setPortfolioMargin(bool on) external;
}
