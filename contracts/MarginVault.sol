// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {ILPPool, IInsuranceFund} from "./interfaces/IProtocol.sol";
import {
    MarketParams,
    Market,
    IsolatedPosition,
    CrossPosition,
    CollateralConfig,
    MarketState
} from "./interfaces/IMarginVault.sol";
import {MarginMath, Health} from "./libraries/MarginMath.sol";
import {ConstantsLib} from "./libraries/ConstantsLib.sol";
import {ErrorsLib} from "./libraries/ErrorsLib.sol";
import {EventsLib} from "./libraries/EventsLib.sol";
import {MarginBooks} from "./MarginBooks.sol";

/// @title MarginVault
/// @notice Perpetual markets with isolated positions and cross accounts over one margin-math core,
/// the LP pool as counterparty, permissionless liquidation and a bad-debt waterfall
/// (account collateral -> insurance fund -> LP pool).
/// @dev Entry points run checks -> math -> storage writes -> event -> token transfers last. The vault's
/// token balances always equal its books: per token, sum of isolated margins (quote) plus sum of cross
/// balances.
contract MarginVault is MarginBooks, Ownable, ReentrancyGuardTransient {
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

    /// @dev What a liquidation owes and pays, in quote tokens.
    struct Settlement {
        int256 pnl;
        uint256 keeperReward;
        uint256 insuranceFee;
        uint256 remaining;
        uint256 badDebt;
        uint256 fromInsurance;
        uint256 fromPool;
        uint256 shortfall;
    }

    /// @dev Sum of a liquidation's closes across markets.
    struct CloseTotals {
        int256 pnlUsd;
        uint256 penaltyUsd;
        uint256 keeperUsd;
        bool full;
    }

    ILPPool public immutable pool;
    IInsuranceFund public immutable insuranceFund;

    constructor(IERC20 quote, IOracleAdapter oracle_, ILPPool pool_, IInsuranceFund insurance_, address owner_)
        MarginBooks(quote, IERC20Metadata(address(quote)).decimals(), oracle_)
        Ownable(owner_)
    {
        pool = pool_;
        insuranceFund = insurance_;
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

    function setMarketParams(uint256 marketId, MarketParams calldata params) external onlyOwner {
        _checkParams(params);
        _market(marketId).params = params;
        emit EventsLib.MarketParamsSet(marketId, params);
    }

    /// @notice Enable or re-weight a non-quote collateral token of cross accounts.
    function setCollateral(address token, uint256 weightWad, uint256 liquidationDiscountWad) external onlyOwner {
        if (token == address(_quote)) revert ErrorsLib.UnsupportedCollateral(token);
        _bound("collateralWeight", weightWad, 1, ConstantsLib.MAX_COLLATERAL_WEIGHT);
        _bound("liquidationDiscount", liquidationDiscountWad, 1, ConstantsLib.WAD - weightWad);
        uint8 decimals = IERC20Metadata(token).decimals();
        _bound("collateralDecimals", decimals, 0, ConstantsLib.USD_DECIMALS);
        if (!_collateralConfig[token].enabled) _collateralTokens.push(token);
        _collateralConfig[token] = CollateralConfig(true, decimals, uint64(weightWad), uint64(liquidationDiscountWad));
        emit EventsLib.CollateralConfigured(token, weightWad, liquidationDiscountWad);
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

    // ================================================================================== liquidation

    /// @notice Liquidate an isolated position whose equity is below maintenance. Partial when closing a
    /// part restores equity >= 1.25 x maintenance and leaves at least the minimum notional, full otherwise.
    /// Fills at the oracle price; the penalty on the closed notional pays the keeper and the insurance fund.
    function liquidateIsolated(uint256 positionId) external nonReentrant {
        IsolatedPosition storage p = _openPosition(positionId);
        address owner = p.owner;
        if (msg.sender == owner) revert ErrorsLib.SelfLiquidation(owner);
        (CloseTotals memory t, int256 closeSize, uint256 priceWad) = _planIsolated(p);
        Settlement memory st = _settlementTerms(p.margin, t);

        Market storage m = _markets[p.marketId];
        (int256 size, uint256 entry) = (p.size, p.entryPriceWad);
        _removeExposure(m, size, entry);
        if (t.full) {
            _untrackOpen(p.openIndex);
            delete _positions[positionId];
        } else {
            _addExposure(m, size - closeSize, entry);
            (p.size, p.margin) = ((size - closeSize).toInt128(), st.remaining.toUint128());
        }
        _emitIsolatedLiquidated(positionId, owner, closeSize, priceWad, st, t.full);
        _coverBadDebt(st, positionId, true);
        _executeSettlement(st);
        if (t.full && st.remaining > 0) _quote.safeTransfer(owner, st.remaining);
    }

    function _emitIsolatedLiquidated(
        uint256 positionId,
        address owner,
        int256 closeSize,
        uint256 priceWad,
        Settlement memory st,
        bool full
    ) internal {
        emit EventsLib.IsolatedLiquidated(
            positionId, owner, msg.sender, closeSize, priceWad, st.pnl, st.keeperReward, st.insuranceFee, st.remaining, full
        );
    }

    /// @dev Check an isolated position is liquidatable and plan the close: the fraction that restores
    /// health, or all of it when the margin could not pay a partial close's penalty.
    function _planIsolated(IsolatedPosition storage p)
        internal
        view
        returns (CloseTotals memory t, int256 closeSize, uint256 priceWad)
    {
        MarketState memory s = _marketState(p.marketId);
        priceWad = s.priceWad;
        Health memory h = _isolatedHealth(p, s);
        if (!MarginMath.isLiquidatable(h)) revert ErrorsLib.NotLiquidatable(h.equityUsd, h.maintenanceUsd);
        MarketParams storage mp = _markets[p.marketId].params;
        uint256 fullPenaltyUsd = MarginMath.mulWadUp(MarginMath.notionalUsdUp(p.size, priceWad), mp.liquidationPenaltyWad);
        uint256 fraction = MarginMath.liquidationFractionUp(h.equityUsd, h.maintenanceUsd, fullPenaltyUsd);
        closeSize = _planClose(t, mp, p.size, p.entryPriceWad, priceWad, fraction);
        if (!t.full && _settlementTerms(p.margin, t).shortfall > 0) {
            t = CloseTotals(0, 0, 0, false);
            closeSize = _planClose(t, mp, p.size, p.entryPriceWad, priceWad, ConstantsLib.WAD);
        }
    }

    /// @notice Liquidate a cross account whose equity is below maintenance: close the same fraction of every
    /// position (full when needed), then, if the quote balance cannot pay the realised loss and penalty,
    /// sell the account's other collateral to the keeper at oracle price less its discount.
    /// @dev The keeper must have approved enough quote tokens to buy that collateral.
    function liquidateCross(address account) external nonReentrant {
        if (msg.sender == account) revert ErrorsLib.SelfLiquidation(account);
        (MarketState[] memory states, Health memory h, uint256 fullPenaltyUsd) = _crossRisk(account);
        if (!MarginMath.isLiquidatable(h)) revert ErrorsLib.NotLiquidatable(h.equityUsd, h.maintenanceUsd);

        uint256 fraction = MarginMath.liquidationFractionUp(h.equityUsd, h.maintenanceUsd, fullPenaltyUsd);
        uint256 quoteBalance = _collateral[account][address(_quote)];
        (CloseTotals memory t, int256[] memory closes) = _planCross(account, states, fraction);
        Settlement memory st = _settlementTerms(quoteBalance + _collateralSaleValue(account), t);
        if (!t.full && st.shortfall > 0) (t, closes) = _planCross(account, states, ConstantsLib.WAD);

        _applyCrossCloses(account, states, closes);
        st = _settlementTerms(quoteBalance, t);
        uint256 proceeds;
        if (st.shortfall > 0) {
            proceeds = _seizeCollateral(account, st.shortfall);
            st = _settlementTerms(quoteBalance + proceeds, t);
        }
        _collateral[account][address(_quote)] = st.remaining;
        emit EventsLib.CrossLiquidated(
            account, msg.sender, fraction, st.pnl, st.keeperReward, st.insuranceFee, st.remaining, t.full
        );
        _coverBadDebt(st, uint256(uint160(account)), false);
        _executeSettlement(st);
    }

    /// @dev Market states, health and the penalty of closing everything, for a cross account.
    function _crossRisk(address account)
        internal
        view
        returns (MarketState[] memory states, Health memory h, uint256 fullPenaltyUsd)
    {
        uint256 n = _markets.length;
        states = new MarketState[](n);
        for (uint256 i = 0; i < n; ++i) {
            int256 size = _crossPositions[account][i].size;
            if (size == 0) continue;
            states[i] = _marketState(i);
            fullPenaltyUsd += MarginMath.mulWadUp(
                MarginMath.notionalUsdUp(size, states[i].priceWad), _markets[i].params.liquidationPenaltyWad
            );
        }
        h = _accountHealthAt(account, states, _collateralPrices(account));
    }

    function _planCross(address account, MarketState[] memory states, uint256 fraction)
        internal
        view
        returns (CloseTotals memory t, int256[] memory closes)
    {
        closes = new int256[](states.length);
        t.full = true;
        for (uint256 i = 0; i < states.length; ++i) {
            CrossPosition storage cp = _crossPositions[account][i];
            if (cp.size == 0) continue;
            bool allSoFar = t.full;
            closes[i] = _planClose(t, _markets[i].params, cp.size, cp.entryPriceWad, states[i].priceWad, fraction);
            t.full = allSoFar && t.full;
        }
    }

    function _applyCrossCloses(address account, MarketState[] memory states, int256[] memory closes) internal {
        for (uint256 i = 0; i < closes.length; ++i) {
            if (closes[i] == 0) continue;
            CrossPosition storage cp = _crossPositions[account][i];
            (int256 size, uint256 entry) = (cp.size, cp.entryPriceWad);
            Market storage m = _markets[i];
            _removeExposure(m, size, entry);
            int256 left = size - closes[i];
            _addExposure(m, left, entry);
            cp.size = left.toInt128();
            if (left == 0) {
                cp.entryPriceWad = 0;
                _crossPositionClosed(account);
            }
            emit EventsLib.CrossPositionLiquidated(
                account, i, closes[i], states[i].priceWad, MarginMath.pnlUsdFloor(closes[i], entry, states[i].priceWad)
            );
        }
    }

    /// @dev Plan closing `fraction` of one position at the oracle price, adding to `t`. Closes it all when
    /// the fraction is WAD or the rest would fall under the minimum notional. Sets t.full to whether it did.
    function _planClose(
        CloseTotals memory t,
        MarketParams storage mp,
        int256 size,
        uint256 entry,
        uint256 priceWad,
        uint256 fraction
    ) internal view returns (int256 closeSize) {
        closeSize = fraction >= ConstantsLib.WAD ? size : MarginMath.scaleSizeUp(size, fraction);
        if (closeSize != size && MarginMath.notionalUsdDown(size - closeSize, priceWad) < mp.minNotionalUsd) {
            closeSize = size;
        }
        uint256 penaltyUsd = MarginMath.mulWadUp(MarginMath.notionalUsdUp(closeSize, priceWad), mp.liquidationPenaltyWad);
        t.pnlUsd += MarginMath.pnlUsdFloor(closeSize, entry, priceWad);
        t.penaltyUsd += penaltyUsd;
        t.keeperUsd += MarginMath.mulWadDown(penaltyUsd, mp.keeperShareWad);
        t.full = closeSize == size;
    }

    /// @dev Split what the account can pay: keeper reward first (always paid, by the waterfall if need
    /// be, so underwater positions still get liquidated), then the realised loss, then the insurance fee
    /// out of what is left. `badDebt` is what the account cannot pay.
    function _settlementTerms(uint256 available, CloseTotals memory t) internal view returns (Settlement memory st) {
        st.pnl = MarginMath.signedUsdToQuoteFloor(t.pnlUsd, quoteDecimals);
        uint256 penalty = MarginMath.usdToQuoteUp(t.penaltyUsd, quoteDecimals);
        st.keeperReward = Math.min(penalty, MarginMath.usdToQuoteDown(t.keeperUsd, quoteDecimals));
        uint256 fee = penalty - st.keeperReward;
        int256 equity = int256(available) + st.pnl;
        if (equity >= int256(st.keeperReward + fee)) {
            st.insuranceFee = fee;
            st.remaining = uint256(equity) - st.keeperReward - fee;
            return st;
        }
        st.shortfall = uint256(int256(st.keeperReward + fee) - equity);
        if (equity >= int256(st.keeperReward)) st.insuranceFee = uint256(equity) - st.keeperReward;
        else st.badDebt = uint256(int256(st.keeperReward) - equity);
    }

    /// @dev Waterfall steps 2 and 3: the insurance fund pays what it can, the LP pool absorbs the rest.
    function _coverBadDebt(Settlement memory st, uint256 subject, bool isolated) internal {
        if (st.badDebt == 0) return;
        st.fromInsurance = Math.min(st.badDebt, _quote.balanceOf(address(insuranceFund)));
        st.fromPool = st.badDebt - st.fromInsurance;
        emit EventsLib.BadDebtCovered(subject, isolated, st.badDebt, st.fromInsurance, st.fromPool);
    }

    /// @dev Token movements of a liquidation. Cash in: the account's funds, the pool's side of the PnL,
    /// the insurance cover. Cash out: keeper reward, insurance fee, and `remaining` (kept by the caller).
    function _executeSettlement(Settlement memory st) internal {
        // Cash in before cash out: the insurance cover first, so that paying the pool a loss larger
        // than the account's funds never borrows, even for one call, other users' balances.
        if (st.fromInsurance > 0) insuranceFund.cover(st.fromInsurance);
        // The pool pays profits and the bad debt it absorbs; it receives realised losses.
        _settleRealizedWithPool(st.pnl + int256(st.fromPool));
        if (st.keeperReward > 0) _quote.safeTransfer(msg.sender, st.keeperReward);
        if (st.insuranceFee > 0) _quote.safeTransfer(address(insuranceFund), st.insuranceFee);
    }

    /// @dev Sell the account's non-quote collateral, in list order, to the keeper until `neededQuote` is
    /// raised or it runs out (waterfall step 1). The keeper pays quote tokens; no value leaves the books.
    function _seizeCollateral(address account, uint256 neededQuote) internal returns (uint256 proceeds) {
        uint256 n = _collateralTokens.length;
        for (uint256 i = 0; i < n && proceeds < neededQuote; ++i) {
            address token = _collateralTokens[i];
            uint256 balance = _collateral[account][token];
            if (balance == 0) continue;
            CollateralConfig memory c = _collateralConfig[token];
            uint256 unitPrice = MarginMath.mulWadDown(oracle.priceWad(token), ConstantsLib.WAD - c.liquidationDiscountWad);
            uint256 stillNeededUsd = MarginMath.quoteToUsd(neededQuote - proceeds, quoteDecimals);
            uint256 amount = Math.min(balance, MarginMath.mulDivUp(stillNeededUsd, 10 ** c.decimals, unitPrice));
            uint256 paid = MarginMath.usdToQuoteDown(MarginMath.valueUsdDown(amount, c.decimals, unitPrice), quoteDecimals);
            if (paid + proceeds < neededQuote && amount < balance) {
                amount += 1; // rounding left it a unit short
                paid = MarginMath.usdToQuoteDown(MarginMath.valueUsdDown(amount, c.decimals, unitPrice), quoteDecimals);
            }
            _collateral[account][token] = balance - amount;
            proceeds += paid;
            emit EventsLib.CollateralSeized(account, token, msg.sender, amount, paid);
            _quote.safeTransferFrom(msg.sender, address(this), paid);
            IERC20(token).safeTransfer(msg.sender, amount);
        }
    }

    /// @dev What selling all of an account's non-quote collateral would raise, quote tokens.
    function _collateralSaleValue(address account) internal view returns (uint256 total) {
        for (uint256 i = 0; i < _collateralTokens.length; ++i) {
            address token = _collateralTokens[i];
            uint256 balance = _collateral[account][token];
            if (balance == 0) continue;
            CollateralConfig memory c = _collateralConfig[token];
            uint256 unitPrice = MarginMath.mulWadDown(oracle.priceWad(token), ConstantsLib.WAD - c.liquidationDiscountWad);
            total += MarginMath.usdToQuoteDown(MarginMath.valueUsdDown(balance, c.decimals, unitPrice), quoteDecimals);
        }
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
        // Cap and impact are relative to the pool's cash (what LPs put in and traders lost), not to its
        // PnL-marked value: one balance read instead of a price read per market.
        uint256 poolValueUsd = MarginMath.quoteToUsd(_quote.balanceOf(address(pool)), quoteDecimals);
        f.fillPriceWad = MarginMath.fillPriceAgainstTrader(
            priceWad, sizeDelta, _feeFraction(m.params, priceWad, sizeDelta, poolValueUsd)
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

    /// @dev Spread plus size-dependent impact (impact = coefficient * notional / pool value, capped).
    function _feeFraction(MarketParams storage mp, uint256 priceWad, int256 sizeDelta, uint256 poolValueUsd)
        internal
        view
        returns (uint256)
    {
        uint256 impact = ConstantsLib.MAX_IMPACT_FRACTION;
        if (poolValueUsd > 0) {
            uint256 scaled = MarginMath.mulWadUp(MarginMath.notionalUsdUp(sizeDelta, priceWad), mp.impactCoefficientWad);
            impact = Math.min(impact, MarginMath.mulDivUp(scaled, ConstantsLib.WAD, poolValueUsd));
        }
        return mp.spreadWad + impact;
    }

    /// @dev Move realised PnL between the vault and the pool: positive, the pool pays; negative, it receives.
    function _settleRealizedWithPool(int256 traderPnl) internal {
        if (traderPnl > 0) pool.payVault(uint256(traderPnl));
        else if (traderPnl < 0) _quote.safeTransfer(address(pool), uint256(-traderPnl));
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
    }

    function _bound(bytes32 name, uint256 value, uint256 lo, uint256 hi) internal pure {
        if (value < lo || value > hi) revert ErrorsLib.ParamOutOfBounds(name, value, lo, hi);
    }
}
