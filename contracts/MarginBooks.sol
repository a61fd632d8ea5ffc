// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SignedMath} from "@openzeppelin/contracts/utils/math/SignedMath.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {ILPPool, IInsuranceFund} from "./interfaces/IProtocol.sol";
import {
    IMarginBooks,
    MarketParams,
    Market,
    IsolatedPosition,
    CrossPosition,
    CollateralConfig,
    MarketState,
    Defences
} from "./interfaces/IMarginVault.sol";
import {MarginMath, Health} from "./libraries/MarginMath.sol";
import {ConstantsLib} from "./libraries/ConstantsLib.sol";
import {ErrorsLib} from "./libraries/ErrorsLib.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title MarginBooks
/// @notice The vault's storage (all of it: its modules run on it by delegatecall), its bookkeeping helpers,
/// health and fill pricing (computed here once, with MarginMath, for the vault and its modules alike). The
/// raw views are the vault's alone (`MarginViews`: the modules do not carry them); views that only compute
/// live in `MarginLens`.
abstract contract MarginBooks is IMarginBooks {
    using SafeCast for uint256;
    using SafeCast for int256;
    using SafeERC20 for IERC20;

    IERC20 internal immutable _quote;
    uint8 public immutable quoteDecimals;
    IOracleAdapter public immutable oracle;
    ILPPool public immutable pool;
    IInsuranceFund public immutable insuranceFund;
    /// @notice See `Defences`.
    bool public immutable liquidationAtFillPrice;
    /// @notice See `Defences`.
    bool public immutable staleCollateralAtZero;
    /// @notice The quote is valued at its oracle feed (see `Defences.quoteAtFeed`); false: at $1.
    bool public immutable quoteAtFeed;

    /// @dev The result of one trade against the pool.
    struct Fill {
        int256 newSize;
        uint256 newEntryPriceWad;
        uint256 fillPriceWad;
        int256 realizedPnlUsd;
        bool increased;
    }

    Market[] internal _markets;

    mapping(uint256 positionId => IsolatedPosition) internal _positions;
    uint256 public nextPositionId = 1;
    /// @dev Open isolated position ids (swap-and-pop), so scans touch only live positions.
    uint256[] internal _openPositionIds;

    mapping(address account => mapping(uint256 marketId => CrossPosition)) internal _crossPositions;
    /// @dev Cross balances per token, the quote token included.
    mapping(address account => mapping(address token => uint256)) internal _collateral;
    /// @dev Per account, in one slot: open cross positions and the place in `_crossAccounts` plus one.
    struct CrossAccountMeta {
        uint64 openCount;
        uint64 indexPlusOne;
        /// @dev Portfolio margin: requirements on the account's net risk (`MarginMath.portfolioRequirementUsdUp`).
        bool portfolio;
    }

    mapping(address account => CrossAccountMeta) internal _crossMeta;
    /// @dev Accounts with at least one open cross position (swap-and-pop).
    address[] internal _crossAccounts;

    address[] internal _collateralTokens;
    mapping(address token => CollateralConfig) internal _collateralConfig;

    /// @inheritdoc IMarginBooks
    mapping(address owner => uint256) public claimableQuote;
    /// @inheritdoc IMarginBooks
    uint256 public totalClaimableQuote;

    /// @dev A queued change of a market's parameters and when it may be applied.
    struct PendingParams {
        MarketParams params;
        uint256 readyAt;
    }

    /// @dev A queued re-weighting of an enabled collateral token.
    struct PendingCollateral {
        uint64 weightWad;
        uint64 liquidationDiscountWad;
        uint64 readyAt;
    }

    mapping(uint256 marketId => PendingParams) internal _pendingParams;
    mapping(address token => PendingCollateral) internal _pendingCollateral;

    /// @dev Notional liquidations closed in a market in block `blockNumber` (the rate limit's window).
    struct LiquidationWindow {
        uint64 blockNumber;
        uint192 notionalUsd;
    }

    mapping(uint256 marketId => LiquidationWindow) internal _liquidationWindow;

    /// @dev Bad debt the LP pool absorbed from a market's liquidations on day `day` (the loss cap's window).
    struct PoolLossWindow {
        uint64 day;
        uint192 absorbedQuote;
    }

    mapping(uint256 marketId => PoolLossWindow) internal _poolLoss;
    /// @dev Bad debt beyond the pool's loss cap, per market, owed by its profitable longs (true) or shorts.
    mapping(uint256 marketId => mapping(bool long => uint256)) internal _deleverageDeficit;
    /// @notice Sum of every market's deleveraging deficit, quote tokens: what the pool was not paid of the
    /// bankrupt positions' losses and will be by the haircuts (it counts in the pool's value meanwhile).
    uint256 public totalDeleverageDeficit;

    constructor(
        IERC20 quote,
        uint8 quoteDecimals_,
        IOracleAdapter oracle_,
        ILPPool pool_,
        IInsuranceFund insurance_,
        Defences memory defences
    ) {
        liquidationAtFillPrice = defences.liquidationAtFillPrice;
        staleCollateralAtZero = defences.staleCollateralAtZero;
        quoteAtFeed = defences.quoteAtFeed;
        _quote = quote;
        quoteDecimals = quoteDecimals_;
        oracle = oracle_;
        pool = pool_;
        insuranceFund = insurance_;
    }

    /// @notice The quote token (also what the vault checks its modules were deployed with).
    function quoteToken() public view returns (address) {
        return address(_quote);
    }

    // ================================================================================== health

    function _marketState(uint256 marketId) internal view returns (MarketState memory s) {
        Market storage m = _market(marketId);
        MarketParams storage p = m.params;
        uint256 buffer;
        if (p.maxBufferWad > 0) {
            uint256 vol;
            (s.priceWad, vol) = oracle.priceAndVolatility(m.asset);
            buffer = MarginMath.volatilityBufferUp(vol, p.volFloorWad, p.volSlopeWad, p.maxBufferWad);
        } else {
            s.priceWad = oracle.priceWad(m.asset);
        }
        s.initialRatioWad = p.initialMarginWad + buffer;
        s.maintenanceRatioWad = p.maintenanceMarginWad + buffer;
        (s.tierNotionalUsd, s.tierRatioWad) = (p.tierNotionalUsd, p.tierMarginWad);
        s.fundingIndexWad = _fundingIndexAt(m, s.priceWad);
    }

    /// @dev The market's funding index brought up to now, the time since its last update accrued at `priceWad`
    /// and the open interest since then (every change of open interest stores the index first).
    function _fundingIndexAt(Market storage m, uint256 priceWad) internal view returns (int256) {
        return m.fundingIndexWad
            + MarginMath.fundingIndexDeltaAwayFromZero(
                priceWad,
                m.params.fundingRateWad,
                m.netSize,
                m.longOpenInterest + m.shortOpenInterest,
                block.timestamp - m.fundingUpdatedAt
            );
    }

    /// @dev Store the funding index brought up to now (`_marketState`'s), before open interest changes.
    function _storeFunding(Market storage m, int256 indexWad) internal {
        (m.fundingIndexWad, m.fundingUpdatedAt) = (indexWad.toInt96(), uint32(block.timestamp));
    }

    function _isolatedHealth(IsolatedPosition storage p, MarketState memory s) internal view returns (Health memory) {
        return MarginMath.positionHealth(
            int256(MarginMath.quoteToUsdDown(p.margin, quoteDecimals, _quotePriceWad()))
                + MarginMath.fundingPnlUsdFloor(p.size, p.fundingEntryWad, s.fundingIndexWad),
            p.size,
            p.entryPriceWad,
            s.priceWad,
            s.initialRatioWad,
            s.maintenanceRatioWad,
            s.tierNotionalUsd,
            s.tierRatioWad
        );
    }

    function _accountHealth(address account) internal view returns (Health memory) {
        MarketState[] memory states = new MarketState[](_markets.length);
        for (uint256 i = 0; i < states.length; ++i) {
            if (_crossPositions[account][i].size != 0) states[i] = _marketState(i);
        }
        return _accountHealthAt(account, states, _collateralPrices(account));
    }

    /// @dev Equity = quote balance + sum(collateral value * weight) + sum(PnL and funding); requirements summed
    /// per market. Collateral value and PnL round down, requirements up.
    function _accountHealthAt(address account, MarketState[] memory states, uint256[] memory prices)
        internal
        view
        returns (Health memory h)
    {
        int256 equity =
            int256(MarginMath.quoteToUsdDown(_collateral[account][address(_quote)], quoteDecimals, _quotePriceWad()));
        for (uint256 i = 0; i < _collateralTokens.length; ++i) {
            uint256 amount = _collateral[account][_collateralTokens[i]];
            if (amount == 0) continue;
            CollateralConfig memory c = _collateralConfig[_collateralTokens[i]];
            equity += int256(MarginMath.mulWadDown(MarginMath.valueUsdDown(amount, c.decimals, prices[i]), c.weightWad));
        }
        h.equityUsd = equity;
        bool portfolio = _crossMeta[account].portfolio;
        // a portfolio account's legs' requirements, signed by side, for its net-risk requirement
        int256[] memory initials = new int256[](portfolio ? states.length : 0);
        int256[] memory maints = new int256[](portfolio ? states.length : 0);
        for (uint256 i = 0; i < states.length; ++i) {
            CrossPosition storage cp = _crossPositions[account][i];
            if (cp.size == 0) continue;
            Health memory ph = _legHealth(cp, states[i]);
            h.equityUsd += ph.equityUsd;
            if (portfolio) {
                (initials[i], maints[i]) = cp.size > 0
                    ? (int256(ph.initialUsd), int256(ph.maintenanceUsd))
                    : (-int256(ph.initialUsd), -int256(ph.maintenanceUsd));
            } else {
                h.initialUsd += ph.initialUsd;
                h.maintenanceUsd += ph.maintenanceUsd;
            }
        }
        if (portfolio) {
            h.initialUsd = MarginMath.portfolioRequirementUsdUp(initials, ConstantsLib.PORTFOLIO_CORRELATION);
            h.maintenanceUsd = MarginMath.portfolioRequirementUsdUp(maints, ConstantsLib.PORTFOLIO_CORRELATION);
        }
    }

    /// @dev One cross leg's PnL and funding (as equity) and its own requirements.
    function _legHealth(CrossPosition storage cp, MarketState memory s) internal view returns (Health memory) {
        return MarginMath.positionHealth(
            MarginMath.fundingPnlUsdFloor(cp.size, cp.fundingEntryWad, s.fundingIndexWad),
            cp.size,
            cp.entryPriceWad,
            s.priceWad,
            s.initialRatioWad,
            s.maintenanceRatioWad,
            s.tierNotionalUsd,
            s.tierRatioWad
        );
    }

    /// @dev Oracle prices of the collateral tokens `account` holds (0 for those it does not). A token whose
    /// price cannot be read (stale feed) is priced 0: worth nothing to margin, so it can neither block a
    /// liquidation nor back a withdrawal or a trade.
    function _collateralPrices(address account) internal view returns (uint256[] memory prices) {
        prices = new uint256[](_collateralTokens.length);
        for (uint256 i = 0; i < prices.length; ++i) {
            if (_collateral[account][_collateralTokens[i]] > 0) prices[i] = _collateralPrice(_collateralTokens[i]);
        }
    }

    /// @dev A collateral token's oracle price: 0 when it cannot be read (or the feed's revert, with the
    /// stale-collateral defence off).
    function _collateralPrice(address token) internal view returns (uint256) {
        return staleCollateralAtZero ? oracle.priceWadOrZero(token) : oracle.priceWad(token);
    }

    // ================================================================================== rooms

    /// @dev Notional (USD wad, at the oracle price) liquidations may still close in `marketId` in this
    /// block; `type(uint256).max` for a market without a cap.
    function _liquidationRoomUsd(uint256 marketId) internal view returns (uint256) {
        uint256 cap = _market(marketId).params.liquidationCapUsd;
        if (cap == 0) return type(uint256).max;
        LiquidationWindow memory w = _liquidationWindow[marketId];
        uint256 used = w.blockNumber == block.number ? w.notionalUsd : 0;
        return cap > used ? cap - used : 0;
    }

    /// @dev Bad debt the LP pool may still absorb from `marketId`'s liquidations today, quote tokens:
    /// `poolLossCapWad` of its trading liquidity less what it absorbed today (max: no cap).
    function _poolLossRoom(uint256 marketId) internal view returns (uint256) {
        uint256 cap = _market(marketId).params.poolLossCapWad;
        if (cap == 0) return type(uint256).max;
        PoolLossWindow memory w = _poolLoss[marketId];
        uint256 used = w.day == block.timestamp / 1 days ? w.absorbedQuote : 0;
        uint256 limit = MarginMath.mulWadDown(pool.tradingLiquidity(), cap);
        return limit > used ? limit - used : 0;
    }

    // ================================================================================== fills

    /// @dev Pool liquidity that trades are priced and capped against, USD wad: cash that has stayed
    /// (see `LPPool.tradingLiquidity`), so liquidity that can leave at once never lowers what a trade pays.
    function _tradingLiquidityUsd() internal view returns (uint256) {
        return MarginMath.quoteToUsdDown(pool.tradingLiquidity(), quoteDecimals, _quotePriceWad());
    }

    /// @dev The quote token's USD price: its feed's (checked like any feed: stale or out of bounds reverts)
    /// with `quoteAtFeed`, else 1e18. Margin, balances and pool cash are valued at it, and USD amounts paid or
    /// taken are converted at it.
    function _quotePriceWad() internal view returns (uint256) {
        return quoteAtFeed ? oracle.priceWad(address(_quote)) : ConstantsLib.WAD;
    }

    /// @dev Spread plus impact (floored at the market's minimum fee) for trading `notionalUsd`.
    function _feeFraction(MarketParams storage mp, uint256 notionalUsd, uint256 liquidityUsd)
        internal
        view
        returns (uint256)
    {
        return MarginMath.tradeFeeFractionUp(mp.spreadWad, mp.minFeeWad, mp.impactCoefficientWad, notionalUsd, liquidityUsd);
    }

    /// @dev Move realised PnL between the vault and the pool: positive, the pool pays; negative, it receives.
    function _settleRealizedWithPool(int256 traderPnl) internal {
        if (traderPnl > 0) pool.payVault(uint256(traderPnl));
        else if (traderPnl < 0) _quote.safeTransfer(address(pool), uint256(-traderPnl));
    }

    // ================================================================================== books

    function _market(uint256 marketId) internal view returns (Market storage) {
        if (marketId >= _markets.length) revert ErrorsLib.UnknownMarket(marketId);
        return _markets[marketId];
    }

    function _openPosition(uint256 positionId) internal view returns (IsolatedPosition storage p) {
        p = _positions[positionId];
        if (p.owner == address(0)) revert ErrorsLib.UnknownPosition(positionId);
    }

    function _ownedPosition(uint256 positionId) internal view returns (IsolatedPosition storage p) {
        p = _openPosition(positionId);
        if (p.owner != msg.sender) revert ErrorsLib.NotPositionOwner(msg.sender, p.owner);
    }

    /// @dev Add a position's size, entry notional and funding entry to its market's aggregates (removed
    /// exactly later).
    function _addExposure(Market storage m, int256 size, uint256 entryPriceWad, int256 fundingEntryWad) internal {
        if (size == 0) return;
        (uint128 longOi, uint128 shortOi) = (m.longOpenInterest, m.shortOpenInterest);
        if (size > 0) m.longOpenInterest = longOi + uint256(size).toUint128();
        else m.shortOpenInterest = shortOi + SignedMath.abs(size).toUint128();
        (m.netSize, m.netEntryNotionalUsd) = (
            (m.netSize + size).toInt128(),
            (m.netEntryNotionalUsd + MarginMath.entryNotionalSigned(size, entryPriceWad)).toInt128()
        );
        if (fundingEntryWad != 0) {
            m.netFundingEntryUsd =
                (m.netFundingEntryUsd + MarginMath.fundingEntryTowardZero(size, fundingEntryWad)).toInt128();
        }
    }

    function _removeExposure(Market storage m, int256 size, uint256 entryPriceWad, int256 fundingEntryWad) internal {
        if (size == 0) return;
        if (size > 0) m.longOpenInterest -= uint256(size).toUint128();
        else m.shortOpenInterest -= SignedMath.abs(size).toUint128();
        (m.netSize, m.netEntryNotionalUsd) = (
            (m.netSize - size).toInt128(),
            (m.netEntryNotionalUsd - MarginMath.entryNotionalSigned(size, entryPriceWad)).toInt128()
        );
        if (fundingEntryWad != 0) {
            m.netFundingEntryUsd =
                (m.netFundingEntryUsd - MarginMath.fundingEntryTowardZero(size, fundingEntryWad)).toInt128();
        }
    }

    /// @dev Append to the open list; the index lives in the position's first slot.
    function _trackOpen(IsolatedPosition storage p, uint256 positionId) internal {
        p.openIndex = uint64(_openPositionIds.length);
        _openPositionIds.push(positionId);
    }

    function _untrackOpen(uint256 index) internal {
        uint256 last = _openPositionIds[_openPositionIds.length - 1];
        _openPositionIds[index] = last;
        _positions[last].openIndex = uint64(index);
        _openPositionIds.pop();
    }

    function _crossPositionOpened(address account) internal {
        CrossAccountMeta storage meta = _crossMeta[account];
        if (meta.openCount++ == 0) {
            _crossAccounts.push(account);
            meta.indexPlusOne = uint64(_crossAccounts.length);
        }
    }

    function _crossPositionClosed(address account) internal {
        CrossAccountMeta storage meta = _crossMeta[account];
        if (--meta.openCount > 0) return;
        uint256 index = meta.indexPlusOne - 1;
        address last = _crossAccounts[_crossAccounts.length - 1];
        _crossAccounts[index] = last;
        _crossMeta[last].indexPlusOne = uint64(index + 1);
        _crossAccounts.pop();
        meta.indexPlusOne = 0;
    }

    // ================================================================================== trading core

    /// @dev Fill `sizeDelta` against the pool at oracle price +/- spread and impact, update open interest,
    /// and return the new size, entry and the realised PnL (USD): a reduce's, plus the funding accrued since
    /// `fundingEntryWad` (the position's funding entry becomes the index now). Shared by isolated and cross.
    function _trade(
        uint256 marketId,
        int256 size,
        uint256 entryPriceWad,
        int256 fundingEntryWad,
        int256 sizeDelta,
        MarketState memory s
    ) internal returns (Fill memory f) {
        uint256 priceWad = s.priceWad;
        if (sizeDelta == 0) revert ErrorsLib.ZeroSize();
        f.newSize = size + sizeDelta;
        if (size != 0 && f.newSize != 0 && (f.newSize > 0) != (size > 0)) {
            revert ErrorsLib.SizeFlipNotAllowed(size, sizeDelta);
        }
        Market storage m = _markets[marketId];
        // Cap and impact are relative to the pool's trading liquidity (cash that has stayed), not to its
        // PnL-marked value: one read instead of a price read per market.
        uint256 poolValueUsd = _tradingLiquidityUsd();
        f.fillPriceWad = MarginMath.fillPriceAgainstTrader(
            priceWad, sizeDelta, _feeFraction(m.params, MarginMath.notionalUsdUp(sizeDelta, priceWad), poolValueUsd)
        );
        f.increased = size == 0 || (size > 0) == (sizeDelta > 0);
        if (f.increased) {
            f.newEntryPriceWad = size == 0
                ? f.fillPriceWad
                : MarginMath.averageEntryAgainstTrader(size, entryPriceWad, sizeDelta, f.fillPriceWad);
        } else {
            f.newEntryPriceWad = f.newSize == 0 ? 0 : entryPriceWad;
            f.realizedPnlUsd = MarginMath.pnlUsdFloor(-sizeDelta, entryPriceWad, f.fillPriceWad);
        }
        f.realizedPnlUsd += MarginMath.fundingPnlUsdFloor(size, fundingEntryWad, s.fundingIndexWad);
        _storeFunding(m, s.fundingIndexWad);
        _removeExposure(m, size, entryPriceWad, fundingEntryWad);
        _addExposure(m, f.newSize, f.newEntryPriceWad, s.fundingIndexWad);
        if (f.increased) {
            uint256 oiUsd = MarginMath.mulWadUp(m.longOpenInterest + m.shortOpenInterest, priceWad);
            uint256 capUsd = MarginMath.mulWadDown(poolValueUsd, m.params.openInterestCapWad);
            if (oiUsd > capUsd) revert ErrorsLib.OpenInterestCapExceeded(marketId, oiUsd, capUsd);
        }
    }

    function _checkMinNotional(uint256 marketId, int256 size, uint256 priceWad) internal view returns (uint256 notional) {
        notional = MarginMath.notionalUsdUp(size, priceWad);
        uint256 minNotional = _markets[marketId].params.minNotionalUsd;
        if (notional < minNotional) revert ErrorsLib.PositionTooSmall(notional, minNotional);
    }
}
