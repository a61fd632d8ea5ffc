// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SignedMath} from "@openzeppelin/contracts/utils/math/SignedMath.sol";
import {
    IMarginVault, IsolatedPosition, CrossPosition, CollateralConfig, MarketState
} from "../interfaces/IMarginVault.sol";
import {MarginMath, Health} from "../libraries/MarginMath.sol";
import {IOracleAdapter} from "../interfaces/IOracleAdapter.sol";
import {ErrorsLib} from "../libraries/ErrorsLib.sol";

/// @title MarginLens
/// @notice Read-only conveniences for keepers and outside tools: a paged scan of what is liquidatable now,
/// the exact liquidation price of an isolated position and an estimate for a cross position, and the health
/// of positions and accounts (moved out of the vault, which keeps only raw reads). Each reads every oracle
/// price once per call and computes health with the vault's own MarginMath, as the vault does. A feed that
/// cannot be read hides nothing: its collateral counts as 0 (as in the vault) and only positions in its own
/// market are skipped by the scans (the vault cannot price their close).
contract MarginLens {
    IMarginVault public immutable vault;

    constructor(IMarginVault vault_) {
        vault = vault_;
    }

    /// @notice Open isolated positions `[start, start + count)` of the open list that are liquidatable now.
    /// @return liquidatable their ids; `scanned` how many were looked at (0 means the end was reached).
    function scanIsolated(uint256 start, uint256 count)
        external
        view
        returns (uint256[] memory liquidatable, uint256 scanned)
    {
        (uint256[] memory ids,, bool[] memory flags) = isolatedBook(start, count);
        liquidatable = new uint256[](ids.length);
        uint256 found;
        for (uint256 i = 0; i < ids.length; ++i) {
            if (flags[i]) liquidatable[found++] = ids[i];
        }
        assembly ("memory-safe") {
            mstore(liquidatable, found) // shrink to the ids found
        }
        scanned = ids.length;
    }

    /// @notice The open isolated positions `[start, start + count)` with their data and whether each is
    /// liquidatable now: the book and the keeper's scan in one call.
    function isolatedBook(uint256 start, uint256 count)
        public
        view
        returns (uint256[] memory ids, IsolatedPosition[] memory positions, bool[] memory liquidatable)
    {
        (ids, positions) = vault.openPositions(start, count);
        MarketState[] memory states = _marketStatesOrZero();
        (uint8 decimals, uint256 quotePrice) = _quote(); // once, not once per position
        liquidatable = new bool[](ids.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            liquidatable[i] = _liquidatable(positions[i], states[positions[i].marketId], decimals, quotePrice);
        }
    }

    /// @notice Health of an isolated position now: equity = margin + PnL at the oracle price + funding.
    function isolatedHealth(uint256 positionId) external view returns (Health memory) {
        IsolatedPosition memory p = _position(positionId);
        (uint8 decimals, uint256 quotePrice) = _quote();
        return _health(p, vault.marketState(p.marketId), decimals, quotePrice);
    }

    /// @notice Health of a cross account now: equity = quote + sum(weighted collateral) + sum(PnL), collateral
    /// whose feed cannot be read counted as 0.
    function accountHealth(address account) external view returns (Health memory h) {
        (h,) = accountHealthAt(account, _marketStatesOrZero(), _collateralPrices());
    }

    /// @notice Health of a cross account under given market states and collateral prices (index-aligned with
    /// `vault.collateralTokens()`), the vault's own; `priced` is false when the account has a position in a
    /// market whose state is zero (no price now: that health is not to be used).
    function accountHealthAt(address account, MarketState[] memory states, uint256[] memory prices)
        public
        view
        returns (Health memory h, bool priced)
    {
        h = vault.accountHealthAt(account, states, prices);
        priced = true;
        for (uint256 m = 0; m < states.length && priced; ++m) {
            if (states[m].priceWad == 0 && vault.crossPosition(account, m).size != 0) priced = false;
        }
    }

    /// @notice Cross accounts `[start, start + count)` of the open list that are liquidatable now. An account
    /// with a position in a market whose feed cannot be read is skipped (the vault could not close it).
    function scanCross(uint256 start, uint256 count) external view returns (address[] memory liquidatable, uint256 scanned) {
        address[] memory accounts = vault.crossAccounts(start, count);
        MarketState[] memory states = _marketStatesOrZero();
        uint256[] memory prices = _collateralPrices();
        liquidatable = new address[](accounts.length);
        uint256 found;
        for (uint256 i = 0; i < accounts.length; ++i) {
            (Health memory h, bool priced) = accountHealthAt(accounts[i], states, prices);
            if (priced && MarginMath.isLiquidatable(h)) liquidatable[found++] = accounts[i];
        }
        assembly ("memory-safe") {
            mstore(liquidatable, found)
        }
        scanned = accounts.length;
    }

    /// @notice The cross books of `accounts` in one call (every price read once): health per account, and
    /// per account and market (index `account * marketCount + market`) the position's size, entry price and
    /// funding entry.
    function accountBooks(address[] calldata accounts)
        external
        view
        returns (
            Health[] memory healths,
            int256[] memory sizes,
            uint256[] memory entries,
            uint256[] memory quotes,
            int256[] memory fundingEntries
        )
    {
        MarketState[] memory states = _marketStatesOrZero();
        uint256[] memory prices = _collateralPrices();
        uint256 n = states.length;
        address quote = vault.quoteToken();
        healths = new Health[](accounts.length);
        sizes = new int256[](accounts.length * n);
        entries = new uint256[](accounts.length * n);
        fundingEntries = new int256[](accounts.length * n);
        quotes = new uint256[](accounts.length);
        for (uint256 i = 0; i < accounts.length; ++i) {
            (healths[i],) = accountHealthAt(accounts[i], states, prices);
            quotes[i] = vault.collateralBalance(accounts[i], quote);
            for (uint256 m = 0; m < n; ++m) {
                CrossPosition memory cp = vault.crossPosition(accounts[i], m);
                (sizes[i * n + m], entries[i * n + m], fundingEntries[i * n + m]) =
                    (cp.size, cp.entryPriceWad, cp.fundingEntryWad);
            }
        }
    }

    /// @notice Exact liquidation price of an isolated position (wad), with the current maintenance buffer
    /// held: a long is liquidatable at every price <= the answer and at none above it; a short at every
    /// price >= the answer and none below. Fees are in the entry price already, the funding accrued so far in
    /// the margin. 0 for a long that no positive price liquidates.
    function isolatedLiquidationPrice(uint256 positionId) external view returns (uint256) {
        IsolatedPosition memory p = _position(positionId);
        MarketState memory s = vault.marketState(p.marketId);
        uint256 absSize = SignedMath.abs(p.size);
        (uint8 decimals, uint256 quotePrice) = _quote();
        int256 marginUsd = int256(MarginMath.quoteToUsdDown(p.margin, decimals, quotePrice))
            + MarginMath.fundingPnlUsdFloor(p.size, p.fundingEntryWad, s.fundingIndexWad);
        uint256 entryUsd = MarginMath.mulWadDown(absSize, p.entryPriceWad);
        uint256 m = s.maintenanceRatioWad;
        // Closed form, then walked to the exact unit the rounded health check flips at.
        if (p.size > 0) {
            int256 num = int256(entryUsd) - marginUsd;
            if (num <= 0 && !_liquidatableAt(p, s, marginUsd, 1)) return 0;
            uint256 estimate = num <= 0 ? 1 : MarginMath.mulDivDown(uint256(num), 1e36, absSize * (1e18 - m));
            return _lastLiquidatableLong(p, s, marginUsd, estimate);
        }
        uint256 estimateShort =
            MarginMath.mulDivDown((marginUsd > 0 ? uint256(marginUsd) : 0) + entryUsd, 1e36, absSize * (1e18 + m));
        return _firstLiquidatableShort(p, s, marginUsd, estimateShort);
    }

    /// @notice Estimated price of `marketId` at which `account` becomes liquidatable, every other price
    /// held, collateral in the same asset moving with it; rounding ignored. 0 if no positive price does.
    /// A portfolio account's maintenance is not linear in price: its estimate is Newton's step from the
    /// health's slope measured 0.1 % up the price.
    function crossLiquidationPrice(address account, uint256 marketId) external view returns (uint256) {
        MarketState[] memory states = _marketStates();
        uint256[] memory prices = _collateralPrices();
        (Health memory h,) = accountHealthAt(account, states, prices);
        if (vault.portfolioMargin(account)) return _portfolioLiquidationPrice(account, marketId, states, prices, h);
        MarketState memory s = states[marketId];
        int256 size = vault.crossPosition(account, marketId).size;
        // d(equity)/d(price) and d(maintenance)/d(price), in base wad
        int256 slopeEquity = size + _sameAssetCollateral(account, vault.market(marketId).asset);
        uint256 ratio = s.maintenanceRatioWad;
        if (MarginMath.notionalUsdUp(size, s.priceWad) > s.tierNotionalUsd) ratio += s.tierRatioWad;
        int256 slopeMaint = int256(MarginMath.mulWadDown(SignedMath.abs(size), ratio));
        int256 denom = slopeEquity - slopeMaint;
        if (denom == 0) return 0;
        int256 gap = int256(h.maintenanceUsd) - h.equityUsd;
        int256 price = int256(s.priceWad) + (gap * 1e18) / denom;
        return price > 0 ? uint256(price) : 0;
    }

    // ------------------------------------------------------------------------------------------

    function _portfolioLiquidationPrice(
        address account,
        uint256 marketId,
        MarketState[] memory states,
        uint256[] memory prices,
        Health memory h
    ) internal view returns (uint256) {
        uint256 p0 = states[marketId].priceWad;
        uint256 step = p0 / 1000;
        if (step == 0) return 0;
        states[marketId].priceWad = p0 + step;
        address asset = vault.market(marketId).asset;
        address[] memory tokens = vault.collateralTokens();
        for (uint256 i = 0; i < tokens.length; ++i) {
            if (tokens[i] == asset && prices[i] != 0) prices[i] += prices[i] / 1000;
        }
        (Health memory up,) = accountHealthAt(account, states, prices);
        int256 gap0 = h.equityUsd - int256(h.maintenanceUsd);
        int256 slope = (up.equityUsd - int256(up.maintenanceUsd)) - gap0; // per `step` of price
        if (slope == 0) return 0;
        int256 price = int256(p0) - (gap0 * int256(step)) / slope;
        return price > 0 ? uint256(price) : 0;
    }

    /// @dev The quote token's decimals and USD price (the vault's valuation of margin).
    function _quote() internal view returns (uint8 decimals, uint256 quotePrice) {
        return (vault.quoteDecimals(), vault.quotePriceWad());
    }

    function _health(IsolatedPosition memory p, MarketState memory s, uint8 quoteDecimals, uint256 quotePrice)
        internal
        pure
        returns (Health memory)
    {
        return MarginMath.positionHealth(
            int256(MarginMath.quoteToUsdDown(p.margin, quoteDecimals, quotePrice))
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

    /// @dev Liquidatable at `priceWad`, the margin (with its funding) already in USD: `marginUsd` does not
    /// move with the price, so the search reads the quote's price once, not at every step.
    function _liquidatableAt(IsolatedPosition memory p, MarketState memory s, int256 marginUsd, uint256 priceWad)
        internal
        pure
        returns (bool)
    {
        return MarginMath.isLiquidatable(
            MarginMath.positionHealth(
                marginUsd,
                p.size,
                p.entryPriceWad,
                priceWad,
                s.initialRatioWad,
                s.maintenanceRatioWad,
                s.tierNotionalUsd,
                s.tierRatioWad
            )
        );
    }

    /// @dev Bracket the flip around the estimate by doubling steps, then search it.
    function _lastLiquidatableLong(IsolatedPosition memory p, MarketState memory s, int256 marginUsd, uint256 x)
        internal
        pure
        returns (uint256)
    {
        uint256 step = 1;
        if (_liquidatableAt(p, s, marginUsd, x)) {
            uint256 lo = x;
            while (_liquidatableAt(p, s, marginUsd, lo + step)) (lo, step) = (lo + step, step * 2);
            return _search(p, s, marginUsd, lo, lo + step);
        }
        uint256 hi = x;
        while (hi > step && !_liquidatableAt(p, s, marginUsd, hi - step)) (hi, step) = (hi - step, step * 2);
        if (hi > step) return _search(p, s, marginUsd, hi - step, hi);
        if (hi <= 1 || !_liquidatableAt(p, s, marginUsd, 1)) return 0;
        return _search(p, s, marginUsd, 1, hi);
    }

    function _firstLiquidatableShort(IsolatedPosition memory p, MarketState memory s, int256 marginUsd, uint256 x)
        internal
        pure
        returns (uint256)
    {
        uint256 step = 1;
        if (_liquidatableAt(p, s, marginUsd, x)) {
            uint256 hi = x;
            while (hi > step && _liquidatableAt(p, s, marginUsd, hi - step)) (hi, step) = (hi - step, step * 2);
            return _search(p, s, marginUsd, hi > step ? hi - step : 0, hi) + 1;
        }
        uint256 lo = x;
        while (!_liquidatableAt(p, s, marginUsd, lo + step)) (lo, step) = (lo + step, step * 2);
        return _search(p, s, marginUsd, lo, lo + step) + 1;
    }

    /// @dev Binary search on [lo, hi) where the predicate flips once: returns the last price whose
    /// answer equals the answer at `lo` (long: last liquidatable; short: last healthy).
    function _search(IsolatedPosition memory p, MarketState memory s, int256 marginUsd, uint256 lo, uint256 hi)
        internal
        pure
        returns (uint256)
    {
        bool atLo = _liquidatableAt(p, s, marginUsd, lo);
        while (hi - lo > 1) {
            uint256 mid = lo + (hi - lo) / 2;
            if (_liquidatableAt(p, s, marginUsd, mid) == atLo) lo = mid;
            else hi = mid;
        }
        return lo;
    }

    /// @dev A position is liquidatable now if its market can be priced and equity < maintenance. A market
    /// whose oracle is stale (state zero) liquidates nothing: the vault would revert.
    function _liquidatable(IsolatedPosition memory p, MarketState memory s, uint8 decimals, uint256 quotePrice)
        internal
        pure
        returns (bool)
    {
        return s.priceWad != 0 && MarginMath.isLiquidatable(_health(p, s, decimals, quotePrice));
    }

    /// @dev Every market's state, zero for a market whose state cannot be read (a stale oracle), so one
    /// stale feed does not hide the other markets' liquidations.
    function _marketStatesOrZero() internal view returns (MarketState[] memory states) {
        states = new MarketState[](vault.marketCount());
        for (uint256 i = 0; i < states.length; ++i) {
            try vault.marketState(i) returns (MarketState memory st) {
                states[i] = st;
            } catch {}
        }
    }

    function _marketStates() internal view returns (MarketState[] memory states) {
        states = new MarketState[](vault.marketCount());
        for (uint256 i = 0; i < states.length; ++i) {
            states[i] = vault.marketState(i);
        }
    }

    /// @dev Every collateral token's price, 0 where its feed cannot be read now (as the vault values it).
    function _collateralPrices() internal view returns (uint256[] memory prices) {
        address[] memory tokens = vault.collateralTokens();
        IOracleAdapter oracle = vault.oracle();
        prices = new uint256[](tokens.length);
        for (uint256 i = 0; i < tokens.length; ++i) {
            prices[i] = oracle.priceWadOrZero(tokens[i]);
        }
    }

    /// @dev An open position, or the vault's `UnknownPosition` for an id that is not (never was, or closed).
    function _position(uint256 positionId) internal view returns (IsolatedPosition memory p) {
        p = vault.position(positionId);
        if (p.owner == address(0)) revert ErrorsLib.UnknownPosition(positionId);
    }

    function _sameAssetCollateral(address account, address asset) internal view returns (int256) {
        uint256 amount = vault.collateralBalance(account, asset);
        if (amount == 0) return 0;
        CollateralConfig memory c = vault.collateralConfig(asset);
        uint256 baseWad = amount * 10 ** (18 - c.decimals);
        return int256(MarginMath.mulWadDown(baseWad, c.weightWad));
    }
}
