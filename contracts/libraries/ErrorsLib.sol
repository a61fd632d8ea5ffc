// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ErrorsLib
/// @notice Every custom error of the protocol; each carries the values that explain it.
library ErrorsLib {
    /// @notice Thrown when an amount that must be positive is zero.
    error ZeroAmount();
    /// @notice Thrown when a size or size change of zero is given.
    error ZeroSize();
    /// @notice Thrown when a market id does not exist.
    error UnknownMarket(uint256 marketId);
    /// @notice Thrown when an isolated position id is not open.
    error UnknownPosition(uint256 positionId);
    /// @notice Thrown when someone other than the owner acts on an owner-only path.
    error NotPositionOwner(address caller, address owner);
    /// @notice Thrown when notional / margin would exceed the market's maximum leverage.
    error LeverageTooHigh(uint256 leverageWad, uint256 maxLeverageWad);
    /// @notice Thrown when an action would leave equity under the initial margin requirement.
    error BelowInitialMargin(int256 equityUsd, uint256 initialUsd);
    /// @notice Thrown when a trade would push a market's open interest past its cap on the pool.
    error OpenInterestCapExceeded(uint256 marketId, uint256 openInterestUsd, uint256 capUsd);
    /// @notice Thrown when a position would be left with a notional under the market's minimum.
    error PositionTooSmall(uint256 notionalUsd, uint256 minNotionalUsd);
    /// @notice Thrown when one trade would take a position through zero to the other side.
    error SizeFlipNotAllowed(int256 size, int256 sizeDelta);
    /// @notice Thrown when an owner's close or reduce would realise a loss larger than the margin.
    error Underwater(int256 equityAfterTokens);
    /// @notice Thrown when a cross trade realises a loss the account's quote balance cannot pay.
    error InsufficientQuote(uint256 neededTokens, uint256 availableTokens);
    /// @notice Thrown when a token is not an enabled collateral of cross accounts.
    error UnsupportedCollateral(address token);
    /// @notice Thrown when a withdrawal asks for more collateral than the account holds.
    error InsufficientCollateral(address token, uint256 requested, uint256 available);
    /// @notice Thrown when an owner sets a parameter outside its hard bounds.
    error ParamOutOfBounds(bytes32 name, uint256 value, uint256 min, uint256 max);
    /// @notice Thrown when a caller that must be the vault is not.
    error NotVault(address caller);
    /// @notice Thrown when a one-time link (vault address) is set again.
    error AlreadySet();
    /// @notice Thrown when an LP withdrawal would leave less pool value than open interest requires.
    error InsufficientFreeLiquidity(uint256 requestedTokens, uint256 freeTokens);
    /// @notice Thrown when LP shares move (redeem, withdraw, transfer) before the deposit cooldown ends.
    error SharesLocked(address owner, uint256 lockedUntil);
    /// @notice Thrown when a deposit would mint locked shares to someone other than the caller.
    error DepositForOther(address caller, address receiver);
    /// @notice Thrown when an LP asks to exit while its previous request waits for its claim.
    error ExitPending(address owner);
    /// @notice Thrown when an exit is claimed for an owner with none pending.
    error NoExitPending(address owner);
    /// @notice Thrown when an exit is claimed before its delay has passed.
    error ExitNotReady(address owner, uint256 readyAt);
    /// @notice Thrown when a queued change is applied before its time, or none is queued.
    error TimelockNotReady(uint256 readyAt, uint256 nowTimestamp);
    /// @notice Thrown when one change moves parameter number `index` (field order) further than one step.
    error ParamStepTooLarge(uint256 index, uint256 current, uint256 proposed);
    /// @notice Thrown when a feed does not answer as configured (decimals) or has no live positive price.
    error FeedCheckFailed(address feed, bytes32 reason);
    /// @notice Thrown when there is nothing to claim.
    error NothingToClaim(address account);

    // --- oracle ------------------------------------------------------------------------------
    /// @notice Thrown when no feed is configured for an asset.
    error FeedNotSet(address asset);
    /// @notice Thrown when the feed's latest round is older than its heartbeat allows.
    error StalePrice(address asset, uint256 updatedAt, uint256 nowTimestamp);
    /// @notice Thrown when the feed answers zero or a negative price.
    error NonPositivePrice(address asset, int256 answer);
    /// @notice Thrown when the normalised price is outside the feed's configured bounds.
    error PriceOutOfBounds(address asset, uint256 priceWad, uint256 minPriceWad, uint256 maxPriceWad);
    /// @notice Thrown when a vault is built with a module bound to other parts (quote, oracle, pool, insurance
    /// fund or defences) than its own.
    error ModuleMismatch(address module);
}
