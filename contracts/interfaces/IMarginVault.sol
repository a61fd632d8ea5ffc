// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Health} from "../libraries/MarginMath.sol";
import {IOracleAdapter} from "./IOracleAdapter.sol";

/// @notice Parameters of one perpetual market. Ratios are wad fractions of notional (0.05e18 = 5 %).
/// @param initialMarginWad requirement to open, grow or withdraw (before the volatility buffer).
/// @param maintenanceMarginWad requirement to stay alive (before the volatility buffer).
/// @param maxLeverageWad notional / deposited margin ceiling of an isolated position (10e18 = 10x).
/// @param liquidationPenaltyWad penalty on the notional a liquidation closes; < maintenance margin.
/// @param keeperShareWad share of the penalty paid to the keeper; the rest goes to the insurance fund.
/// @param spreadWad fraction of price every trade pays (buys above, sells below the oracle).
/// @param impactCoefficientWad price impact = coefficient * trade notional / pool cash (capped at 5 %).
/// @param openInterestCapWad (long + short notional) <= cap * pool cash.
/// @param minNotionalUsd smallest notional a position may be left with, USD wad.
/// @param volFloorWad hourly volatility below which there is no buffer.
/// @param volSlopeWad buffer added per unit of hourly volatility above the floor.
/// @param maxBufferWad ceiling of the buffer; 0 disables it (and skips the volatility read).
/// @param minFeeWad floor of spread + impact, per side. Set it above half the feed's deviation threshold:
/// a trader who sees the market move before the oracle's round lands wins about one threshold per round,
/// and a round trip then costs more than that (0 disables the floor).
/// @param liquidationCapUsd most notional (USD wad, at the oracle price) liquidations may close in this market in
/// one block, as dYdX and Synthetix cap them; a liquidation beyond it closes only what room is left, and
/// reverts with `LiquidationCapReached` when none is. 0: no cap.
/// @param tierNotionalUsd notional (USD wad) above which a position's requirements carry `tierMarginWad` more:
/// size-tiered margin, as Hyperliquid's and dYdX's tiers (one tier, charged on the notional above it only, so
/// the requirement stays continuous in size and price).
/// @param tierMarginWad ratio added, to the initial and the maintenance requirement, on the notional above
/// `tierNotionalUsd`; 0: no tier.
/// @param fundingRateWad funding per day, as a fraction of price, when the whole open interest is on one side;
/// the rate scales with the skew (net size / open interest), accrues every second, and is paid by the heavier
/// side to the lighter side and the pool (which holds the net), as GMX v2's funding; 0: no funding.
/// @param poolLossCapWad the most bad debt the LP pool absorbs from this market's liquidations in a day (UTC), as
/// a fraction of its trading liquidity; beyond it, the rest is auto-deleveraged from profitable positions on the
/// other side. 0: no cap (the pool absorbs it all).
/// @dev Packed in six storage slots (ratios in 64 bits, USD amounts and leverage in 128; every bound of
/// `ConstantsLib` fits): a trade or a liquidation reads most fields, and each slot read cold costs 2,100 gas.
/// In the ABI each field is still one word.
struct MarketParams {
    uint64 initialMarginWad;
    uint64 maintenanceMarginWad;
    uint128 maxLeverageWad;
    uint64 liquidationPenaltyWad;
    uint64 keeperShareWad;
    uint64 spreadWad;
    uint64 impactCoefficientWad;
    uint64 openInterestCapWad;
    uint128 minNotionalUsd;
    uint64 volFloorWad;
    uint64 volSlopeWad;
    uint64 maxBufferWad;
    uint64 minFeeWad;
    uint128 liquidationCapUsd;
    uint128 tierNotionalUsd;
    uint64 tierMarginWad;
    uint64 fundingRateWad;
    uint64 poolLossCapWad;
}

/// @notice A market's book: its oracle asset, parameters and aggregate open interest.
/// @param longOpenInterest sum of long sizes, base wad.
/// @param shortOpenInterest sum of short sizes (positive), base wad.
/// @param netSize sum of signed sizes, base wad.
/// @param netEntryNotionalUsd sum of signed size * entry price, USD wad (aggregate PnL = netSize * price - this).
/// @param fundingIndexWad funding paid per unit of long size since the market opened, USD wad (shorts are paid
/// it); a position owes size * (index now - index at its entry). 96 bits: $3.9e10 per unit of size, some
/// thousand years of the highest rate on a $100,000 asset.
/// @param fundingUpdatedAt when `fundingIndexWad` was last brought up to date.
/// @param netFundingEntryUsd sum of signed size * funding index at entry, USD wad (aggregate funding owed =
/// netSize * index - this). The three share one slot: every change of open interest reads and writes them.
struct Market {
    address asset;
    uint128 longOpenInterest;
    uint128 shortOpenInterest;
    int128 netSize;
    int128 netEntryNotionalUsd;
    MarketParams params;
    int96 fundingIndexWad;
    uint32 fundingUpdatedAt;
    int128 netFundingEntryUsd;
}

/// @notice An isolated position: it owns its margin (quote tokens) and nothing else.
/// @param openIndex the position's place in the vault's list of open positions (bookkeeping for scans).
/// @param fundingEntryWad its market's funding index when its funding was last settled (at every trade).
struct IsolatedPosition {
    address owner;
    uint32 marketId;
    uint64 openIndex;
    int128 size;
    uint128 margin;
    uint128 entryPriceWad;
    int128 fundingEntryWad;
}

/// @notice One market's position inside a cross account (two storage slots).
struct CrossPosition {
    int128 size;
    uint128 entryPriceWad;
    int128 fundingEntryWad;
}

/// @notice A cross collateral token. Valued at oracle price * weight; sold in liquidation at oracle
/// price * (1 - discount), and discount <= 1 - weight so a sale never lowers the account's equity.
struct CollateralConfig {
    bool enabled;
    uint8 decimals;
    uint64 weightWad;
    uint64 liquidationDiscountWad;
}

/// @notice Defences of the vault that a deployment can turn off, so that a scenario shows what each one
/// stops (scenarios/adversaries_unsafe.yaml); the first two are on in every real deployment, the third is
/// the deployment's choice of how the quote is valued, fixed for the vault's life.
/// @param liquidationAtFillPrice a liquidation closes at the fill price an owner's close of that size gets
/// and the keeper's reward is capped at the equity the close leaves; off, it closes at the oracle price
/// (liquidating one's own position from a second address can then beat closing it).
/// @param staleCollateralAtZero collateral whose feed cannot be read counts as 0 and is not sold; off, it
/// makes every health check of the account revert (a stale dust balance blocks its liquidation).
/// @param quoteAtFeed the quote token is valued at its oracle feed (which must be set before the vault is
/// used; a replacement waits out the adapter's feed timelock like any feed), so a depeg shows in every
/// margin, balance and the pool's cash; off, at $1 whatever its market price (dYdX's and Hyperliquid's
/// convention), and no feed the owner sets for it later changes that.
struct Defences {
    bool liquidationAtFillPrice;
    bool staleCollateralAtZero;
    bool quoteAtFeed;
}

/// @notice A market's risk at the current block: oracle price, the ratios with the buffer added, the size
/// tier (`MarketParams.tierNotionalUsd`, `tierMarginWad`) and the funding index brought up to now.
struct MarketState {
    uint256 priceWad;
    uint256 initialRatioWad;
    uint256 maintenanceRatioWad;
    uint256 tierNotionalUsd;
    uint256 tierRatioWad;
    int256 fundingIndexWad;
}

/// @title IMarginBooks
/// @notice What the vault's books themselves answer (public immutables and balances), in the vault and in each
/// of its modules alike.
interface IMarginBooks {
    function quoteToken() external view returns (address);
    function quoteDecimals() external view returns (uint8);
    function oracle() external view returns (IOracleAdapter);
    /// @notice Quote tokens full liquidations (and deleveragings) left `owner`, waiting for `claimRemainder`.
    function claimableQuote(address owner) external view returns (uint256);
    /// @notice Sum of `claimableQuote` over every owner (part of what the vault's balance backs).
    function totalClaimableQuote() external view returns (uint256);
}

/// @title IMarginVault
/// @notice Read surface of the vault that keepers, the lens and outside tools rely on.
interface IMarginVault is IMarginBooks {
    function marketCount() external view returns (uint256);
    /// @notice The quote token's USD price (wad) that margin and balances are valued at: 1e18 without a feed.
    function quotePriceWad() external view returns (uint256);
    function market(uint256 marketId) external view returns (Market memory);
    /// @notice Oracle price and effective ratios (base + volatility buffer) of a market now.
    function marketState(uint256 marketId) external view returns (MarketState memory);
    function position(uint256 positionId) external view returns (IsolatedPosition memory);
    /// @notice Health of a cross account under given market states and collateral prices (index-aligned
    /// with `collateralTokens()`), the vault's own formula, so that a scan reads each price once.
    function accountHealthAt(address account, MarketState[] memory states, uint256[] memory collateralPricesWad)
        external
        view
        returns (Health memory);
    function crossPosition(address account, uint256 marketId) external view returns (CrossPosition memory);
    function collateralBalance(address account, address token) external view returns (uint256);
    function collateralTokens() external view returns (address[] memory);
    function collateralConfig(address token) external view returns (CollateralConfig memory);
    function openPositionCount() external view returns (uint256);
    /// @notice Open isolated positions `[start, start + count)` of the open list, with their data.
    function openPositions(uint256 start, uint256 count)
        external
        view
        returns (uint256[] memory ids, IsolatedPosition[] memory positions);
    function crossAccountCount() external view returns (uint256);
    /// @notice Notional (USD wad) liquidations may still close in `marketId` in this block (max: no cap).
    function liquidationRoomUsd(uint256 marketId) external view returns (uint256);
    /// @notice Cross accounts with at least one open position, `[start, start + count)`.
    function crossAccounts(uint256 start, uint256 count) external view returns (address[] memory);
    /// @notice Bad debt of `marketId` left to auto-deleveraging, quote tokens: owed by its profitable longs
    /// (`long`) or shorts.
    function deleverageDeficit(uint256 marketId, bool long) external view returns (uint256);
    /// @notice Whether `account` is margined on its net risk (portfolio margin).
    function portfolioMargin(address account) external view returns (bool);
    /// @notice Bad debt the LP pool may still absorb from `marketId` today, quote tokens (max: no cap).
    function poolLossRoom(uint256 marketId) external view returns (uint256);
}
