// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {ILPPool, IInsuranceFund} from "./interfaces/IProtocol.sol";
import {IMarginLiquidation} from "./interfaces/IMarginLiquidation.sol";
import {MarketParams, Market, IsolatedPosition, CrossPosition, MarketState, Defences} from
    "./interfaces/IMarginVault.sol";
import {MarginMath, Health} from "./libraries/MarginMath.sol";
import {ConstantsLib} from "./libraries/ConstantsLib.sol";
import {ErrorsLib} from "./libraries/ErrorsLib.sol";
import {MarginBooks} from "./MarginBooks.sol";

/// @title MarginLiquidator
/// @notice The vault's liquidation module. It holds no state and is only ever run by the vault, by
/// delegatecall, on the vault's storage (the layout is MarginBooks', shared by both); its immutables are the
/// vault's, set by the vault that deploys it. Called directly it would act on its own empty storage.
/// @dev A liquidation closes at the fill price a trade of that size gets (spread, impact and fee floor, as an
/// owner's close), and the penalty comes on top; the keeper's reward is a share of the penalty. So liquidating
/// a position, from any address, never leaves the owner's side more than closing it would.
contract MarginLiquidator is MarginBooks, IMarginLiquidation, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;
    using SafeCast for int256;

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
        /// @dev Where bad debt beyond the pool's loss cap goes: the market, and the side that went bankrupt.
        uint256 market;
        bool long;
        /// @dev Bad debt beyond the pool's loss cap: the pool is not paid it now; the haircuts of
        /// auto-deleveraging pay it later, and meanwhile it counts in the pool's value (`unrealizedTraderPnlUsd`).
        uint256 toDeleverage;
    }

    /// @dev Sum of a liquidation's closes across markets.
    struct CloseTotals {
        int256 pnlUsd;
        uint256 penaltyUsd;
        uint256 keeperUsd;
        bool full;
        /// @dev The close was cut to the market's liquidation room this block (see `liquidationCapUsd`).
        bool capped;
        /// @dev The market of the largest notional closed, and its side: where bad debt beyond the pool's loss
        /// cap is left to auto-deleveraging (the other side's profitable positions pay it).
        uint256 market;
        bool long;
        uint256 largestUsd;
    }

    constructor(IERC20 quote, IOracleAdapter oracle_, ILPPool pool_, IInsuranceFund insurance_, Defences memory defences)
        MarginBooks(quote, IERC20Metadata(address(quote)).decimals(), oracle_, pool_, insurance_, defences)
    {}

    // ================================================================================== isolated

    /// @inheritdoc IMarginLiquidation
    function liquidateIsolated(uint256 positionId) external nonReentrant {
        IsolatedPosition storage p = _openPosition(positionId);
        address owner = p.owner;
        if (msg.sender == owner) revert SelfLiquidation(owner);
        (CloseTotals memory t, int256 closeSize, MarketState memory s) = _planIsolated(p);
        Settlement memory st = _settlementTerms(p.margin, t);

        int256 size = p.size;
        (st.market, st.long) = (p.marketId, size > 0);
        _useLiquidationRoom(p.marketId, MarginMath.notionalUsdUp(closeSize, s.priceWad));
        int256 left = _reduceExposure(p.marketId, size, p.entryPriceWad, p.fundingEntryWad, closeSize, s.fundingIndexWad);
        if (t.full) {
            _untrackOpen(p.openIndex);
            delete _positions[positionId];
            // Credited, not pushed: an owner that cannot receive the token must not block its liquidation.
            if (st.remaining > 0) {
                claimableQuote[owner] += st.remaining;
                totalClaimableQuote += st.remaining;
            }
        } else {
            (p.size, p.margin, p.fundingEntryWad) =
                (left.toInt128(), st.remaining.toUint128(), s.fundingIndexWad.toInt128());
        }
        _emitIsolatedLiquidated(positionId, owner, closeSize, s.priceWad, st, t.full);
        _coverBadDebt(st, positionId, true);
        _executeSettlement(st);
    }

    function _emitIsolatedLiquidated(
        uint256 positionId,
        address owner,
        int256 closeSize,
        uint256 priceWad,
        Settlement memory st,
        bool full
    ) internal {
        emit IsolatedLiquidated(
            positionId, owner, msg.sender, closeSize, priceWad, st.pnl, st.keeperReward, st.insuranceFee, st.remaining, full
        );
    }

    /// @dev Check an isolated position is liquidatable and plan the close: the fraction that restores
    /// health, or all of it when the margin could not pay a partial close's costs. The whole position's
    /// accrued funding is realised with it.
    function _planIsolated(IsolatedPosition storage p)
        internal
        view
        returns (CloseTotals memory t, int256 closeSize, MarketState memory s)
    {
        s = _marketState(p.marketId);
        uint256 priceWad = s.priceWad;
        Health memory h = _isolatedHealth(p, s);
        if (!MarginMath.isLiquidatable(h)) revert NotLiquidatable(h.equityUsd, h.maintenanceUsd);
        MarketParams storage mp = _markets[p.marketId].params;
        uint256 liquidityUsd = _liquidityUsd();
        uint256 fraction =
            MarginMath.liquidationFractionUp(h.equityUsd, h.maintenanceUsd, _fullCloseCostUsd(mp, p.size, priceWad, liquidityUsd));
        int256 funding = MarginMath.fundingPnlUsdFloor(p.size, p.fundingEntryWad, s.fundingIndexWad);
        t.pnlUsd = funding;
        (closeSize,) = _planClose(t, mp, p.size, p.entryPriceWad, priceWad, fraction, liquidityUsd);
        if (!t.full && _settlementTerms(p.margin, t).shortfall > 0) {
            t = CloseTotals(funding, 0, 0, false, false, 0, false, 0);
            (closeSize,) = _planClose(t, mp, p.size, p.entryPriceWad, priceWad, ConstantsLib.WAD, liquidityUsd);
        }
        uint256 allowed = _roomFractionDown(p.marketId, closeSize, p.size, priceWad);
        if (allowed < ConstantsLib.WAD) {
            t = CloseTotals(funding, 0, 0, false, true, 0, false, 0);
            (closeSize,) = _planClose(t, mp, p.size, p.entryPriceWad, priceWad, allowed, liquidityUsd);
        }
    }

    // ================================================================================== cross

    /// @inheritdoc IMarginLiquidation
    function liquidateCross(address account) external nonReentrant {
        if (msg.sender == account) revert SelfLiquidation(account);
        (MarketState[] memory states, uint256[] memory prices, uint256 fraction, uint256 liquidityUsd) =
            _crossRisk(account);
        uint256 quoteBalance = _collateral[account][address(_quote)];
        (CloseTotals memory t, int256[] memory closes, uint256[] memory fills) =
            _planCross(account, states, fraction, liquidityUsd);
        if (
            !t.full && !t.capped
                && _settlementTerms(quoteBalance + _collateralSaleValue(account, prices, true), t).shortfall > 0
        ) {
            (t, closes, fills) = _planCross(account, states, ConstantsLib.WAD, liquidityUsd);
        }

        _applyCrossCloses(account, states, closes, fills);
        Settlement memory st = _settlementTerms(quoteBalance, t);
        if (st.shortfall > 0) {
            bool discounted = _saleAtDiscount(account, quoteBalance, prices, st.pnl, st.shortfall);
            st = _settlementTerms(quoteBalance + _seizeCollateral(account, st.shortfall, prices, discounted), t);
        }
        _collateral[account][address(_quote)] = st.remaining;
        emit CrossLiquidated(account, msg.sender, fraction, st.pnl, st.keeperReward, st.insuranceFee, st.remaining, t.full);
        (st.market, st.long) = (t.market, t.long);
        _coverBadDebt(st, uint256(uint160(account)), false);
        if (st.badDebt > 0) _forfeitUnpricedCollateral(account);
        _executeSettlement(st);
    }

    /// @dev Check a cross account is liquidatable; its market states and collateral prices (each read
    /// once), the fraction to close (leaving room for the cost, penalty plus fill, of closing everything),
    /// and the liquidity fills are priced against.
    function _crossRisk(address account)
        internal
        view
        returns (MarketState[] memory states, uint256[] memory prices, uint256 fraction, uint256 liquidityUsd)
    {
        uint256 n = _markets.length;
        states = new MarketState[](n);
        liquidityUsd = _liquidityUsd();
        uint256 fullCostUsd;
        for (uint256 i = 0; i < n; ++i) {
            int256 size = _crossPositions[account][i].size;
            if (size == 0) continue;
            states[i] = _marketState(i);
            fullCostUsd += _fullCloseCostUsd(_markets[i].params, size, states[i].priceWad, liquidityUsd);
        }
        prices = _collateralPrices(account);
        Health memory h = _accountHealthAt(account, states, prices);
        if (!MarginMath.isLiquidatable(h)) revert NotLiquidatable(h.equityUsd, h.maintenanceUsd);
        fraction = MarginMath.liquidationFractionUp(h.equityUsd, h.maintenanceUsd, fullCostUsd);
    }

    /// @dev Plan closing `fraction` of every leg, cut to the liquidation room of each market this block; every
    /// leg's accrued funding is realised with it.
    function _planCross(address account, MarketState[] memory states, uint256 fraction, uint256 liquidityUsd)
        internal
        view
        returns (CloseTotals memory t, int256[] memory closes, uint256[] memory fills)
    {
        (t, closes, fills) = _planCrossAt(account, states, fraction, liquidityUsd, false);
        uint256 allowed = ConstantsLib.WAD;
        for (uint256 i = 0; i < closes.length; ++i) {
            if (closes[i] == 0) continue;
            int256 size = _crossPositions[account][i].size;
            allowed = Math.min(allowed, _roomFractionDown(i, closes[i], size, states[i].priceWad));
        }
        if (allowed < ConstantsLib.WAD) (t, closes, fills) = _planCrossAt(account, states, allowed, liquidityUsd, true);
    }

    function _planCrossAt(
        address account,
        MarketState[] memory states,
        uint256 fraction,
        uint256 liquidityUsd,
        bool capped
    ) internal view returns (CloseTotals memory t, int256[] memory closes, uint256[] memory fills) {
        t.capped = capped;
        closes = new int256[](states.length);
        fills = new uint256[](states.length);
        t.full = true;
        for (uint256 i = 0; i < states.length; ++i) {
            CrossPosition storage cp = _crossPositions[account][i];
            if (cp.size == 0) continue;
            bool allSoFar = t.full;
            t.pnlUsd += MarginMath.fundingPnlUsdFloor(cp.size, cp.fundingEntryWad, states[i].fundingIndexWad);
            (closes[i], fills[i]) =
                _planClose(t, _markets[i].params, cp.size, cp.entryPriceWad, states[i].priceWad, fraction, liquidityUsd);
            t.full = allSoFar && t.full;
            uint256 notional = MarginMath.notionalUsdUp(closes[i], states[i].priceWad);
            if (notional > t.largestUsd) (t.largestUsd, t.market, t.long) = (notional, i, cp.size > 0);
        }
    }

    function _applyCrossCloses(address account, MarketState[] memory states, int256[] memory closes, uint256[] memory fills)
        internal
    {
        for (uint256 i = 0; i < closes.length; ++i) {
            if (closes[i] == 0) continue;
            CrossPosition storage cp = _crossPositions[account][i];
            uint256 entry = cp.entryPriceWad;
            _useLiquidationRoom(i, MarginMath.notionalUsdUp(closes[i], states[i].priceWad));
            int256 left = _reduceExposure(i, cp.size, entry, cp.fundingEntryWad, closes[i], states[i].fundingIndexWad);
            (cp.size, cp.fundingEntryWad) = (left.toInt128(), left == 0 ? int128(0) : states[i].fundingIndexWad.toInt128());
            if (left == 0) {
                cp.entryPriceWad = 0;
                _crossPositionClosed(account);
            }
            emit CrossPositionLiquidated(
                account, i, closes[i], states[i].priceWad, MarginMath.pnlUsdFloor(closes[i], entry, fills[i])
            );
        }
    }

    // ================================================================================== shared

    /// @dev The liquidity a liquidation's fill is priced against (not read with the defence off).
    function _liquidityUsd() internal view returns (uint256) {
        return liquidationAtFillPrice ? _tradingLiquidityUsd() : 0;
    }

    /// @dev What a liquidation's close of `notionalUsd` pays as a fraction of price: an owner's close fee,
    /// or nothing with the self-liquidation defence off (the fill is then the oracle price).
    function _closeFeeFraction(MarketParams storage mp, uint256 notionalUsd, uint256 liquidityUsd)
        internal
        view
        returns (uint256)
    {
        return liquidationAtFillPrice ? _feeFraction(mp, notionalUsd, liquidityUsd) : 0;
    }

    /// @dev Penalty plus fill cost of closing all of `size`, USD: the cost a liquidation must leave room for.
    function _fullCloseCostUsd(MarketParams storage mp, int256 size, uint256 priceWad, uint256 liquidityUsd)
        internal
        view
        returns (uint256)
    {
        uint256 notional = MarginMath.notionalUsdUp(size, priceWad);
        return MarginMath.mulWadUp(notional, mp.liquidationPenaltyWad + _closeFeeFraction(mp, notional, liquidityUsd));
    }

    /// @dev WAD when closing `closeSize` of a position of `size` fits the market's liquidation room this block;
    /// else the fraction of `size` the room allows, rounded down (close less: the cap is the point). Reverts
    /// with `LiquidationCapReached` when no room is left.
    function _roomFractionDown(uint256 marketId, int256 closeSize, int256 size, uint256 priceWad)
        internal
        view
        returns (uint256)
    {
        uint256 room = _liquidationRoomUsd(marketId);
        if (MarginMath.notionalUsdUp(closeSize, priceWad) <= room) return ConstantsLib.WAD;
        uint256 allowed = MarginMath.mulDivDown(room, ConstantsLib.WAD, MarginMath.notionalUsdUp(size, priceWad));
        if (allowed == 0) revert LiquidationCapReached(marketId, _markets[marketId].params.liquidationCapUsd);
        return allowed;
    }

    /// @dev Count `notionalUsd` closed by a liquidation against the market's cap for this block.
    function _useLiquidationRoom(uint256 marketId, uint256 notionalUsd) internal {
        if (_markets[marketId].params.liquidationCapUsd == 0) return;
        LiquidationWindow storage w = _liquidationWindow[marketId];
        uint256 used = w.blockNumber == block.number ? w.notionalUsd : 0;
        (w.blockNumber, w.notionalUsd) = (uint64(block.number), (used + notionalUsd).toUint192());
    }

    /// @dev Plan closing `fraction` of one position at the fill price a trade of that size gets, adding to `t`.
    /// Closes it all when the fraction is WAD or the rest would fall under the minimum notional. Sets t.full to
    /// whether it did.
    function _planClose(
        CloseTotals memory t,
        MarketParams storage mp,
        int256 size,
        uint256 entry,
        uint256 priceWad,
        uint256 fraction,
        uint256 liquidityUsd
    ) internal view returns (int256 closeSize, uint256 fillPriceWad) {
        closeSize = fraction >= ConstantsLib.WAD ? size : MarginMath.scaleSizeUp(size, fraction);
        // the rest of a position cut by the rate limit may stay under the minimum: it goes next block
        if (
            !t.capped && closeSize != size
                && MarginMath.notionalUsdDown(size - closeSize, priceWad) < mp.minNotionalUsd
        ) {
            closeSize = size;
        }
        uint256 notional = MarginMath.notionalUsdUp(closeSize, priceWad);
        // a fee of 0 (defence off) fills at the oracle price exactly
        fillPriceWad = MarginMath.fillPriceAgainstTrader(priceWad, -closeSize, _closeFeeFraction(mp, notional, liquidityUsd));
        uint256 penaltyUsd = MarginMath.mulWadUp(notional, mp.liquidationPenaltyWad);
        t.pnlUsd += MarginMath.pnlUsdFloor(closeSize, entry, fillPriceWad);
        t.penaltyUsd += penaltyUsd;
        t.keeperUsd += MarginMath.mulWadDown(penaltyUsd, mp.keeperShareWad);
        t.full = closeSize == size;
    }

    /// @dev Split what the account can pay: the realised loss, then the keeper reward, then the insurance
    /// fee out of what is left. The keeper reward is capped at the equity left after the close (what
    /// closing would have paid the owner), so liquidating one's own position from a second address never
    /// beats closing it; only an underwater account (nothing to lose by closing, which it cannot) gets its
    /// keeper paid by the waterfall, so it still gets liquidated. `badDebt` is what the account cannot pay.
    function _settlementTerms(uint256 available, CloseTotals memory t) internal view returns (Settlement memory st) {
        uint256 quotePrice = _quotePriceWad();
        st.pnl = MarginMath.signedUsdToQuoteFloor(t.pnlUsd, quoteDecimals, quotePrice);
        uint256 penalty = MarginMath.usdToQuoteUp(t.penaltyUsd, quoteDecimals, quotePrice);
        st.keeperReward = Math.min(penalty, MarginMath.usdToQuoteDown(t.keeperUsd, quoteDecimals, quotePrice));
        uint256 fee = penalty - st.keeperReward;
        int256 equity = int256(available) + st.pnl;
        if (liquidationAtFillPrice && equity >= 0 && uint256(equity) < st.keeperReward) {
            st.keeperReward = uint256(equity);
        }
        if (equity >= int256(st.keeperReward + fee)) {
            st.insuranceFee = fee;
            st.remaining = uint256(equity) - st.keeperReward - fee;
            return st;
        }
        st.shortfall = uint256(int256(st.keeperReward + fee) - equity);
        if (equity >= int256(st.keeperReward)) st.insuranceFee = uint256(equity) - st.keeperReward;
        else st.badDebt = uint256(int256(st.keeperReward) - equity);
    }

    /// @dev Waterfall steps 2 to 4: the insurance fund pays what it can, the LP pool absorbs the rest up to its
    /// loss cap in `st.market` today, and what is left is owed by the profitable positions on the other side of
    /// the bankrupt one (`st.long`): auto-deleveraging pays it back (`deleverageIsolated`, `deleverageCross`).
    function _coverBadDebt(Settlement memory st, uint256 subject, bool isolated) internal {
        if (st.badDebt == 0) return;
        uint256 marketId = st.market;
        st.fromInsurance = Math.min(st.badDebt, _quote.balanceOf(address(insuranceFund)));
        uint256 rest = st.badDebt - st.fromInsurance;
        uint256 room = _poolLossRoom(marketId);
        st.fromPool = Math.min(rest, room);
        if (room != type(uint256).max) {
            PoolLossWindow storage w = _poolLoss[marketId];
            uint64 today = uint64(block.timestamp / 1 days);
            uint256 used = w.day == today ? w.absorbedQuote : 0;
            (w.day, w.absorbedQuote) = (today, (used + st.fromPool).toUint192());
        }
        st.toDeleverage = rest - st.fromPool;
        if (st.toDeleverage > 0) {
            _deleverageDeficit[marketId][!st.long] += st.toDeleverage;
            totalDeleverageDeficit += st.toDeleverage;
        }
        emit BadDebtCovered(subject, isolated, st.badDebt, st.fromInsurance, st.fromPool, st.toDeleverage, marketId);
    }

    /// @dev Token movements of a liquidation. Cash in: the account's funds, the pool's side of the PnL,
    /// the insurance cover. Cash out: keeper reward, insurance fee, and `remaining` (kept in the books).
    function _executeSettlement(Settlement memory st) internal {
        // Cash in before cash out: the insurance cover first, so that paying the pool a loss larger
        // than the account's funds never borrows, even for one call, other users' balances.
        if (st.fromInsurance > 0) insuranceFund.cover(st.fromInsurance);
        // The pool pays profits and the bad debt it absorbs; it receives realised losses, but for the part of
        // the bad debt past its loss cap, which deleveraging's haircuts pay it later.
        _settleRealizedWithPool(st.pnl + int256(st.fromPool) + int256(st.toDeleverage));
        if (st.keeperReward > 0) _quote.safeTransfer(msg.sender, st.keeperReward);
        if (st.insuranceFee > 0) _quote.safeTransfer(address(insuranceFund), st.insuranceFee);
    }

    // ================================================================================== deleveraging

    /// @inheritdoc IMarginLiquidation
    function deleverageIsolated(uint256 positionId) external nonReentrant {
        IsolatedPosition storage p = _openPosition(positionId);
        uint256 marketId = p.marketId;
        (int256 closeSize, int256 realized, uint256 haircut, MarketState memory s) =
            _planDeleverage(marketId, p.size, p.entryPriceWad, p.fundingEntryWad);
        int256 margin = int256(uint256(p.margin)) + realized - int256(haircut);
        if (margin < 0) revert ErrorsLib.Underwater(margin);
        (address owner, bool long) = (p.owner, p.size > 0);
        _closeIsolatedPart(p, positionId, closeSize, uint256(margin), s.fundingIndexWad);
        _payDeficit(marketId, long, haircut);
        emit Deleveraged(marketId, positionId, owner, closeSize, s.priceWad, realized, haircut);
        _settleRealizedWithPool(realized - int256(haircut)); // the haircut stays with the pool
    }

    /// @dev Take `closeSize` off an isolated position, leaving it `margin`; a full close credits the owner.
    function _closeIsolatedPart(
        IsolatedPosition storage p,
        uint256 positionId,
        int256 closeSize,
        uint256 margin,
        int256 indexWad
    ) internal {
        int256 left = _reduceExposure(p.marketId, p.size, p.entryPriceWad, p.fundingEntryWad, closeSize, indexWad);
        if (left != 0) {
            (p.size, p.margin, p.fundingEntryWad) = (left.toInt128(), margin.toUint128(), indexWad.toInt128());
            return;
        }
        address owner = p.owner;
        _untrackOpen(p.openIndex);
        delete _positions[positionId];
        claimableQuote[owner] += margin;
        totalClaimableQuote += margin;
    }

    /// @inheritdoc IMarginLiquidation
    function deleverageCross(address account, uint256 marketId) external nonReentrant {
        CrossPosition storage cp = _crossPositions[account][marketId];
        (int256 size, uint256 entry, int256 fundingEntry) = (cp.size, cp.entryPriceWad, cp.fundingEntryWad);
        (int256 closeSize, int256 realized, uint256 haircut, MarketState memory s) =
            _planDeleverage(marketId, size, entry, fundingEntry);
        uint256 quoteBalance = _collateral[account][address(_quote)];
        int256 balance = int256(quoteBalance) + realized - int256(haircut);
        if (balance < 0) revert ErrorsLib.InsufficientQuote(uint256(-(realized - int256(haircut))), quoteBalance);
        _collateral[account][address(_quote)] = uint256(balance);
        int256 left = _reduceExposure(marketId, size, entry, fundingEntry, closeSize, s.fundingIndexWad);
        (cp.size, cp.fundingEntryWad) = (left.toInt128(), left == 0 ? int128(0) : s.fundingIndexWad.toInt128());
        if (left == 0) {
            cp.entryPriceWad = 0;
            _crossPositionClosed(account);
        }
        _payDeficit(marketId, size > 0, haircut);
        emit Deleveraged(marketId, 0, account, closeSize, s.priceWad, realized, haircut);
        _settleRealizedWithPool(realized - int256(haircut)); // the haircut stays with the pool
    }

    /// @dev Plan deleveraging a position: its side must owe a deficit and it must be in profit at the oracle
    /// price. Close the smallest part whose profit covers the deficit (rounded up; all of it when none does, or
    /// when the rest would fall under the minimum notional); the haircut is that part's profit up to the deficit.
    /// `realized` is that part's PnL plus the whole position's funding, quote tokens (the owner gets it less the
    /// haircut).
    function _planDeleverage(uint256 marketId, int256 size, uint256 entry, int256 fundingEntry)
        internal
        view
        returns (int256 closeSize, int256 realized, uint256 haircut, MarketState memory s)
    {
        bool long = size > 0;
        uint256 deficit = _deleverageDeficit[marketId][long];
        if (size == 0 || deficit == 0) revert NothingToDeleverage(marketId, long);
        s = _marketState(marketId);
        int256 profit = MarginMath.pnlUsdFloor(size, entry, s.priceWad);
        if (profit <= 0) revert NotProfitable(profit);
        uint256 quotePrice = _quotePriceWad();
        uint256 deficitUsd = MarginMath.quoteToUsdUp(deficit, quoteDecimals, quotePrice);
        closeSize = MarginMath.scaleSizeUp(size, MarginMath.mulDivUp(deficitUsd, ConstantsLib.WAD, uint256(profit)));
        if (MarginMath.notionalUsdDown(size - closeSize, s.priceWad) < _markets[marketId].params.minNotionalUsd) {
            closeSize = size;
        }
        int256 closedProfit = MarginMath.pnlUsdFloor(closeSize, entry, s.priceWad);
        haircut = Math.min(deficit, MarginMath.usdToQuoteDown(uint256(closedProfit), quoteDecimals, quotePrice));
        realized = MarginMath.signedUsdToQuoteFloor(
            closedProfit + MarginMath.fundingPnlUsdFloor(size, fundingEntry, s.fundingIndexWad), quoteDecimals, quotePrice
        );
    }

    /// @dev Store the market's funding and take `closeSize` off a position's exposure; returns what is left.
    function _reduceExposure(
        uint256 marketId,
        int256 size,
        uint256 entry,
        int256 fundingEntry,
        int256 closeSize,
        int256 indexWad
    ) internal returns (int256 left) {
        Market storage m = _markets[marketId];
        _storeFunding(m, indexWad);
        _removeExposure(m, size, entry, fundingEntry);
        left = size - closeSize;
        _addExposure(m, left, entry, indexWad);
    }

    function _payDeficit(uint256 marketId, bool long, uint256 haircut) internal {
        _deleverageDeficit[marketId][long] -= haircut;
        totalDeleverageDeficit -= haircut;
    }

    // ================================================================================== collateral

    /// @dev Sell the account's priced non-quote collateral, in list order, to the keeper until `neededQuote`
    /// is raised or it runs out (waterfall step 1). The keeper pays quote tokens; no value leaves the books.
    /// A token whose feed cannot be read now is skipped: it can be neither valued nor sold.
    function _seizeCollateral(address account, uint256 neededQuote, uint256[] memory prices, bool discounted)
        internal
        returns (uint256 proceeds)
    {
        uint256 n = _collateralTokens.length;
        for (uint256 i = 0; i < n && proceeds < neededQuote; ++i) {
            address token = _collateralTokens[i];
            uint256 unitPrice = _salePrice(token, prices[i], discounted);
            if (unitPrice == 0) continue;
            proceeds += _sellCollateral(account, token, unitPrice, neededQuote - proceeds);
        }
    }

    /// @dev Sell `account`'s `token` to the keeper at `unitPrice` until `neededQuote` is raised or none is
    /// left; returns what the keeper paid, quote tokens.
    function _sellCollateral(address account, address token, uint256 unitPrice, uint256 neededQuote)
        internal
        returns (uint256 paid)
    {
        uint256 balance = _collateral[account][token];
        uint8 decimals = _collateralConfig[token].decimals;
        uint256 quotePrice = _quotePriceWad();
        uint256 neededUsd = MarginMath.quoteToUsdUp(neededQuote, quoteDecimals, quotePrice);
        uint256 amount = Math.min(balance, MarginMath.mulDivUp(neededUsd, 10 ** decimals, unitPrice));
        paid = MarginMath.usdToQuoteDown(MarginMath.valueUsdDown(amount, decimals, unitPrice), quoteDecimals, quotePrice);
        if (paid < neededQuote && amount < balance) {
            amount += 1; // rounding left it a unit short
            paid = MarginMath.usdToQuoteDown(MarginMath.valueUsdDown(amount, decimals, unitPrice), quoteDecimals, quotePrice);
        }
        _collateral[account][token] = balance - amount;
        emit CollateralSeized(account, token, msg.sender, amount, paid);
        _quote.safeTransferFrom(msg.sender, address(this), paid);
        IERC20(token).safeTransfer(msg.sender, amount);
    }

    /// @dev What selling all of an account's priced non-quote collateral would raise, quote tokens (at the
    /// liquidation discount or at the oracle price).
    function _collateralSaleValue(address account, uint256[] memory prices, bool discounted)
        internal
        view
        returns (uint256 total)
    {
        uint256 quotePrice = _quotePriceWad();
        for (uint256 i = 0; i < _collateralTokens.length; ++i) {
            address token = _collateralTokens[i];
            uint256 unitPrice = _salePrice(token, prices[i], discounted);
            if (unitPrice == 0) continue;
            uint256 balance = _collateral[account][token];
            uint8 decimals = _collateralConfig[token].decimals;
            total += MarginMath.usdToQuoteDown(MarginMath.valueUsdDown(balance, decimals, unitPrice), quoteDecimals, quotePrice);
        }
    }

    /// @dev `priceWad` (from `_collateralPrices`: 0 where there is nothing to sell or no price), less the
    /// token's liquidation discount when `discounted`.
    function _salePrice(address token, uint256 priceWad, bool discounted) internal view returns (uint256) {
        if (priceWad == 0 || !discounted) return priceWad;
        return MarginMath.mulWadDown(priceWad, ConstantsLib.WAD - _collateralConfig[token].liquidationDiscountWad);
    }

    /// @dev Whether a cross liquidation sells collateral at its liquidation discount. With the self-
    /// liquidation defence on, only where the account pays for the discount itself: the discounted sale
    /// covers the shortfall, or the account is under water even with its collateral at oracle prices
    /// (closing would leave its owner nothing). Otherwise the waterfall would pay the discount while a
    /// close leaves the owner positive equity: an owner liquidating itself from a second address would
    /// pocket it (found by the invariant suite at scale). The collateral then goes at the oracle price.
    function _saleAtDiscount(address account, uint256 quoteBalance, uint256[] memory prices, int256 pnl, uint256 shortfall)
        internal
        view
        returns (bool)
    {
        if (!liquidationAtFillPrice || _collateralSaleValue(account, prices, true) >= shortfall) return true;
        return int256(quoteBalance + _collateralSaleValue(account, prices, false)) + pnl < 0;
    }

    /// @dev After a cross liquidation that left bad debt, collateral that could not be priced (and so could
    /// not be sold) goes to the insurance fund, which paid first for the debt: an owner never walks away
    /// with collateral while others cover its debt. It stays in the books, as the fund's cross balance.
    function _forfeitUnpricedCollateral(address account) internal {
        address fund = address(insuranceFund);
        for (uint256 i = 0; i < _collateralTokens.length; ++i) {
            address token = _collateralTokens[i];
            uint256 balance = _collateral[account][token];
            if (balance == 0) continue;
            _collateral[account][token] = 0;
            _collateral[fund][token] += balance;
            emit CollateralSeized(account, token, fund, balance, 0);
        }
    }
}
