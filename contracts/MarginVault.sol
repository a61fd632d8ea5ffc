// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {ILPPool, IInsuranceFund} from "./interfaces/IProtocol.sol";
import {IMarginLiquidation} from "./interfaces/IMarginLiquidation.sol";
import {
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
import {EventsLib} from "./libraries/EventsLib.sol";
import {MarginBooks} from "./MarginBooks.sol";
import {MarginLiquidator} from "./MarginLiquidator.sol";

/// @title MarginVault
/// @notice Perpetual markets with isolated positions and cross accounts over one margin-math core,
/// the LP pool as counterparty, permissionless liquidation and a bad-debt waterfall
/// (account collateral -> insurance fund -> LP pool).
/// @dev Entry points run checks -> math -> storage writes -> event -> token transfers last. The vault's
/// token balances always equal its books: per token, sum of isolated margins and of claimable remainders
/// (quote) plus sum of cross balances. Liquidation lives in `MarginLiquidator`, which this vault deploys and
/// runs by delegatecall on its own storage (EIP-170 room, as Euler's EVault routes to its modules).
/// Risk-parameter changes wait `PARAMS_TIMELOCK` and move one bounded step at a time; ownership moves in
/// two steps.
contract MarginVault is MarginBooks, IMarginLiquidation, Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;
    using SafeCast for int256;

    /// @dev The result of one trade against the pool.
    struct Fill {
        int256 newSize;
        uint256 newEntryPriceWad;
        uint256 fillPriceWad;
        int256 realizedPnlUsd;
        bool increased;
    }

    /// @dev `MarketParams.liquidationCapUsd`'s place in the struct.
    uint256 private constant LIQUIDATION_CAP_WORD = 13;

    /// @notice The liquidation module (same storage layout, no state of its own).
    address public immutable liquidator;

    constructor(
        IERC20 quote,
        IOracleAdapter oracle_,
        ILPPool pool_,
        IInsuranceFund insurance_,
        address owner_,
        Defences memory defences
    ) MarginBooks(quote, IERC20Metadata(address(quote)).decimals(), oracle_, pool_, insurance_, defences) Ownable(owner_) {
        liquidator = address(new MarginLiquidator(quote, oracle_, pool_, insurance_, defences));
    }

    // ================================================================================== admin

    function createMarket(address asset, MarketParams calldata params) external onlyOwner returns (uint256 marketId) {
        _checkParams(params);
        marketId = _markets.length;
        Market storage m = _markets.push();
        m.asset = asset;
        m.params = params;
        emit EventsLib.MarketCreated(marketId, asset);
        emit EventsLib.MarketParamsSet(marketId, params);
    }

    /// @notice Queue new parameters for a market; anyone may apply them `PARAMS_TIMELOCK` later. A new
    /// queue replaces the pending one.
    function setMarketParams(uint256 marketId, MarketParams calldata params) external onlyOwner {
        _checkParams(params);
        _checkStep(_market(marketId).params, params);
        uint256 readyAt = block.timestamp + ConstantsLib.PARAMS_TIMELOCK;
        _pendingParams[marketId] = PendingParams(params, readyAt);
        emit EventsLib.MarketParamsQueued(marketId, params, readyAt);
    }

    /// @notice Apply a market's queued parameters once their timelock has passed.
    function applyMarketParams(uint256 marketId) external {
        PendingParams storage q = _pendingParams[marketId];
        _checkReady(q.readyAt);
        MarketParams memory params = q.params;
        _market(marketId).params = params;
        delete _pendingParams[marketId];
        emit EventsLib.MarketParamsSet(marketId, params);
    }

    /// @notice Enable a non-quote collateral token of cross accounts (at once), or queue a re-weighting of an
    /// enabled one (applied by `applyCollateral` after `PARAMS_TIMELOCK`, one bounded step per change).
    function setCollateral(address token, uint256 weightWad, uint256 liquidationDiscountWad) external onlyOwner {
        if (token == address(_quote)) revert ErrorsLib.UnsupportedCollateral(token);
        _bound("collateralWeight", weightWad, 1, ConstantsLib.MAX_COLLATERAL_WEIGHT);
        _bound("liquidationDiscount", liquidationDiscountWad, 1, ConstantsLib.WAD - weightWad);
        CollateralConfig memory c = _collateralConfig[token];
        if (c.enabled) {
            _boundStep(0, c.weightWad, weightWad);
            _boundStep(1, c.liquidationDiscountWad, liquidationDiscountWad);
            uint256 readyAt = block.timestamp + ConstantsLib.PARAMS_TIMELOCK;
            _pendingCollateral[token] = PendingCollateral(uint64(weightWad), uint64(liquidationDiscountWad), uint64(readyAt));
            emit EventsLib.CollateralQueued(token, weightWad, liquidationDiscountWad, readyAt);
            return;
        }
        uint8 decimals = IERC20Metadata(token).decimals();
        _bound("collateralDecimals", decimals, 0, ConstantsLib.USD_DECIMALS);
        _collateralTokens.push(token);
        _collateralConfig[token] = CollateralConfig(true, decimals, uint64(weightWad), uint64(liquidationDiscountWad));
        emit EventsLib.CollateralConfigured(token, weightWad, liquidationDiscountWad);
    }

    /// @notice Apply a queued collateral re-weighting once its timelock has passed.
    function applyCollateral(address token) external {
        PendingCollateral memory q = _pendingCollateral[token];
        _checkReady(q.readyAt);
        (_collateralConfig[token].weightWad, _collateralConfig[token].liquidationDiscountWad) =
            (q.weightWad, q.liquidationDiscountWad);
        delete _pendingCollateral[token];
        emit EventsLib.CollateralConfigured(token, q.weightWad, q.liquidationDiscountWad);
    }

    function _checkReady(uint256 readyAt) internal view {
        if (readyAt == 0 || block.timestamp < readyAt) revert ErrorsLib.TimelockNotReady(readyAt, block.timestamp);
    }

    /// @dev Every field of `next` within one step of `current` (the struct's words, in field order), but the
    /// liquidation cap: from 0, no cap, any step would be one to almost nothing.
    function _checkStep(MarketParams storage current, MarketParams calldata next) internal view {
        bytes memory a = abi.encode(current);
        bytes memory b = abi.encode(next);
        for (uint256 i = 0; i < a.length / 32; ++i) {
            if (i == LIQUIDATION_CAP_WORD) continue;
            uint256 x;
            uint256 y;
            assembly ("memory-safe") {
                x := mload(add(a, add(32, mul(i, 32))))
                y := mload(add(b, add(32, mul(i, 32))))
            }
            _boundStep(i, x, y);
        }
    }

    function _boundStep(uint256 index, uint256 current, uint256 proposed) internal pure {
        uint256 step = Math.max(current / 2, ConstantsLib.MIN_PARAM_STEP);
        if (proposed > current + step || proposed + step < current) {
            revert ErrorsLib.ParamStepTooLarge(index, current, proposed);
        }
    }

    // ================================================================================== liquidation

    /// @inheritdoc IMarginLiquidation
    function liquidateIsolated(uint256) external {
        _delegateToLiquidator();
    }

    /// @inheritdoc IMarginLiquidation
    function liquidateCross(address) external {
        _delegateToLiquidator();
    }

    /// @dev Run the call on the liquidator with this vault's storage; bubble its result or revert as is.
    function _delegateToLiquidator() internal {
        address target = liquidator;
        assembly ("memory-safe") {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), target, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }

    /// @notice Take the quote tokens that full liquidations of the caller's isolated positions left it.
    /// (Credited rather than pushed: an owner that cannot receive the token must not block its liquidation.)
    function claimRemainder() external nonReentrant {
        uint256 amount = claimableQuote[msg.sender];
        if (amount == 0) revert ErrorsLib.NothingToClaim(msg.sender);
        claimableQuote[msg.sender] = 0;
        totalClaimableQuote -= amount;
        emit EventsLib.RemainderClaimed(msg.sender, amount);
        _quote.safeTransfer(msg.sender, amount);
    }

    // ================================================================================== isolated

    /// @notice Open an isolated position of `size` (base wad, + long / - short) with `margin` quote tokens.
    function openIsolated(uint256 marketId, int256 size, uint256 margin) external nonReentrant returns (uint256 positionId) {
        if (margin == 0) revert ErrorsLib.ZeroAmount();
        MarketState memory s = _marketState(marketId);
        Fill memory f = _trade(marketId, 0, 0, size, s.priceWad);
        positionId = nextPositionId++;
        IsolatedPosition storage p = _positions[positionId];
        (p.owner, p.marketId, p.size, p.margin, p.entryPriceWad) =
            (msg.sender, marketId.toUint32(), size.toInt128(), margin.toUint128(), f.fillPriceWad);
        _trackOpen(p, positionId);
        _checkIsolatedGrowth(p, s);
        emit EventsLib.IsolatedOpened(positionId, msg.sender, marketId, size, f.fillPriceWad, margin);
        _quote.safeTransferFrom(msg.sender, address(this), margin);
    }

    /// @notice Add margin to an isolated position; anyone may (a rebalancer, a friend).
    function addIsolatedMargin(uint256 positionId, uint256 amount) external nonReentrant {
        if (amount == 0) revert ErrorsLib.ZeroAmount();
        IsolatedPosition storage p = _openPosition(positionId);
        uint256 margin = p.margin + amount;
        p.margin = margin.toUint128();
        emit EventsLib.IsolatedMarginChanged(positionId, msg.sender, int256(amount), margin);
        _quote.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Take margin out of an isolated position while it stays above its initial requirement.
    function removeIsolatedMargin(uint256 positionId, uint256 amount) external nonReentrant {
        if (amount == 0) revert ErrorsLib.ZeroAmount();
        IsolatedPosition storage p = _ownedPosition(positionId);
        if (amount > p.margin) revert ErrorsLib.InsufficientCollateral(address(_quote), amount, p.margin);
        uint256 margin = p.margin - amount;
        p.margin = uint128(margin);
        Health memory h = _isolatedHealth(p, _marketState(p.marketId));
        if (!MarginMath.meetsInitial(h)) revert ErrorsLib.BelowInitialMargin(h.equityUsd, h.initialUsd);
        emit EventsLib.IsolatedMarginChanged(positionId, msg.sender, -int256(amount), margin);
        _quote.safeTransfer(msg.sender, amount);
    }

    /// @notice Grow (same sign) or reduce (opposite sign) an isolated position; reducing to zero closes it.
    /// A reduce realises its PnL into the margin.
    function modifyIsolated(uint256 positionId, int256 sizeDelta) external nonReentrant {
        _modifyIsolated(positionId, sizeDelta);
    }

    /// @notice Close an isolated position at the fill price and pay margin + PnL to the owner.
    function closeIsolated(uint256 positionId) external nonReentrant {
        _modifyIsolated(positionId, -int256(_ownedPosition(positionId).size));
    }

    function _modifyIsolated(uint256 positionId, int256 sizeDelta) internal {
        IsolatedPosition storage p = _ownedPosition(positionId);
        MarketState memory s = _marketState(p.marketId);
        Fill memory f = _trade(p.marketId, p.size, p.entryPriceWad, sizeDelta, s.priceWad);
        int256 realized = MarginMath.signedUsdToQuoteFloor(f.realizedPnlUsd, quoteDecimals);
        int256 margin = int256(uint256(p.margin)) + realized;
        if (margin < 0) revert ErrorsLib.Underwater(margin);
        if (f.newSize == 0) {
            _untrackOpen(p.openIndex);
            delete _positions[positionId];
            emit EventsLib.IsolatedClosed(positionId, f.fillPriceWad, realized, uint256(margin));
            _settleRealizedWithPool(realized);
            _quote.safeTransfer(msg.sender, uint256(margin));
            return;
        }
        (p.size, p.entryPriceWad, p.margin) = (f.newSize.toInt128(), f.newEntryPriceWad, uint256(margin).toUint128());
        if (f.increased) _checkIsolatedGrowth(p, s);
        else _checkMinNotional(p.marketId, f.newSize, s.priceWad);
        emit EventsLib.IsolatedModified(
            positionId, sizeDelta, f.newSize, f.newEntryPriceWad, f.fillPriceWad, realized, uint256(margin)
        );
        _settleRealizedWithPool(realized);
    }

    /// @dev After an open or a grow: minimum size, leverage on deposited margin, initial requirement.
    function _checkIsolatedGrowth(IsolatedPosition storage p, MarketState memory s) internal view {
        MarketParams storage mp = _markets[p.marketId].params;
        uint256 notional = _checkMinNotional(p.marketId, p.size, s.priceWad);
        uint256 marginUsd = MarginMath.quoteToUsd(p.margin, quoteDecimals);
        uint256 leverage = marginUsd == 0 ? type(uint256).max : MarginMath.mulDivUp(notional, ConstantsLib.WAD, marginUsd);
        if (leverage > mp.maxLeverageWad) revert ErrorsLib.LeverageTooHigh(leverage, mp.maxLeverageWad);
        Health memory h = _isolatedHealth(p, s);
        if (!MarginMath.meetsInitial(h)) revert ErrorsLib.BelowInitialMargin(h.equityUsd, h.initialUsd);
    }

    // ================================================================================== cross

    /// @notice Deposit quote tokens or an enabled collateral token into the caller's cross account.
    function depositCollateral(address token, uint256 amount) external nonReentrant {
        if (amount == 0) revert ErrorsLib.ZeroAmount();
        if (token != address(_quote) && !_collateralConfig[token].enabled) revert ErrorsLib.UnsupportedCollateral(token);
        _collateral[msg.sender][token] += amount;
        emit EventsLib.CollateralDeposited(msg.sender, token, amount);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Withdraw collateral while the account stays above its initial requirement.
    function withdrawCollateral(address token, uint256 amount) external nonReentrant {
        if (amount == 0) revert ErrorsLib.ZeroAmount();
        uint256 balance = _collateral[msg.sender][token];
        if (amount > balance) revert ErrorsLib.InsufficientCollateral(token, amount, balance);
        _collateral[msg.sender][token] = balance - amount;
        if (_crossMeta[msg.sender].openCount > 0) _checkAccountInitial(msg.sender);
        emit EventsLib.CollateralWithdrawn(msg.sender, token, amount);
        IERC20(token).safeTransfer(msg.sender, amount);
    }

    /// @notice Trade `sizeDelta` in `marketId` from the caller's cross account. A reduce realises PnL into
    /// the quote balance, which must be able to pay a realised loss.
    function tradeCross(uint256 marketId, int256 sizeDelta) external nonReentrant {
        MarketState memory s = _marketState(marketId);
        CrossPosition storage cp = _crossPositions[msg.sender][marketId];
        int256 oldSize = cp.size;
        Fill memory f = _trade(marketId, oldSize, cp.entryPriceWad, sizeDelta, s.priceWad);
        (cp.size, cp.entryPriceWad) = (f.newSize.toInt128(), f.newEntryPriceWad.toUint128());
        if (oldSize == 0) _crossPositionOpened(msg.sender);
        if (f.newSize == 0) _crossPositionClosed(msg.sender);
        else _checkMinNotional(marketId, f.newSize, s.priceWad);
        int256 realized = MarginMath.signedUsdToQuoteFloor(f.realizedPnlUsd, quoteDecimals);
        uint256 quoteBalance = _collateral[msg.sender][address(_quote)];
        if (realized < 0 && uint256(-realized) > quoteBalance) {
            revert ErrorsLib.InsufficientQuote(uint256(-realized), quoteBalance);
        }
        _collateral[msg.sender][address(_quote)] = uint256(int256(quoteBalance) + realized);
        if (f.increased) _checkAccountInitial(msg.sender);
        emit EventsLib.CrossTraded(msg.sender, marketId, sizeDelta, f.newSize, f.newEntryPriceWad, f.fillPriceWad, realized);
        _settleRealizedWithPool(realized);
    }

    function _checkAccountInitial(address account) internal view {
        Health memory h = _accountHealth(account);
        if (!MarginMath.meetsInitial(h)) revert ErrorsLib.BelowInitialMargin(h.equityUsd, h.initialUsd);
    }

    // ================================================================================== trading core

    /// @dev Fill `sizeDelta` against the pool at oracle price +/- spread and impact, update open interest,
    /// and return the new size, entry and any realised PnL (USD). Shared by isolated and cross.
    function _trade(uint256 marketId, int256 size, uint256 entryPriceWad, int256 sizeDelta, uint256 priceWad)
        internal
        returns (Fill memory f)
    {
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
        _removeExposure(m, size, entryPriceWad);
        _addExposure(m, f.newSize, f.newEntryPriceWad);
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

    function _checkParams(MarketParams calldata p) internal pure {
        _bound("maintenanceMargin", p.maintenanceMarginWad, ConstantsLib.MIN_MAINTENANCE_MARGIN, ConstantsLib.MAX_MAINTENANCE_MARGIN);
        _bound("initialMargin", p.initialMarginWad, p.maintenanceMarginWad + 1, ConstantsLib.MAX_INITIAL_MARGIN);
        _bound("maxLeverage", p.maxLeverageWad, ConstantsLib.MIN_MAX_LEVERAGE, ConstantsLib.MAX_MAX_LEVERAGE);
        _bound(
            "liquidationPenalty",
            p.liquidationPenaltyWad,
            0,
            Math.min(ConstantsLib.MAX_LIQUIDATION_PENALTY, p.maintenanceMarginWad - 1)
        );
        _bound("keeperShare", p.keeperShareWad, 0, ConstantsLib.MAX_KEEPER_SHARE);
        _bound("spread", p.spreadWad, 0, ConstantsLib.MAX_SPREAD);
        _bound("impactCoefficient", p.impactCoefficientWad, 0, ConstantsLib.MAX_IMPACT_COEFFICIENT);
        _bound("openInterestCap", p.openInterestCapWad, 1, ConstantsLib.MAX_OI_CAP);
        _bound("minNotional", p.minNotionalUsd, 0, ConstantsLib.MAX_MIN_NOTIONAL_USD);
        _bound("volFloor", p.volFloorWad, 0, ConstantsLib.MAX_VOL_FLOOR);
        _bound("volSlope", p.volSlopeWad, 0, ConstantsLib.MAX_VOL_SLOPE);
        _bound("maxBuffer", p.maxBufferWad, 0, ConstantsLib.MAX_MAINTENANCE_BUFFER);
        _bound("minFee", p.minFeeWad, 0, ConstantsLib.MAX_MIN_FEE);
        _bound("liquidationCap", p.liquidationCapUsd, 0, ConstantsLib.MAX_LIQUIDATION_CAP_USD);
        _bound("tierNotional", p.tierNotionalUsd, 0, ConstantsLib.MAX_TIER_NOTIONAL_USD);
        _bound("tierMargin", p.tierMarginWad, 0, ConstantsLib.MAX_TIER_MARGIN);
    }

    function _bound(bytes32 name, uint256 value, uint256 lo, uint256 hi) internal pure {
        if (value < lo || value > hi) revert ErrorsLib.ParamOutOfBounds(name, value, lo, hi);
    }
}
