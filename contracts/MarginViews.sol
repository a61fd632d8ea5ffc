// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IMarginVaultForPool} from "./interfaces/IProtocol.sol";
import {
    IMarginVault,
    MarketParams,
    Market,
    IsolatedPosition,
    CrossPosition,
    CollateralConfig,
    MarketState
} from "./interfaces/IMarginVault.sol";
import {MarginMath, Health} from "./libraries/MarginMath.sol";
import {ConstantsLib} from "./libraries/ConstantsLib.sol";
import {MarginBooks} from "./MarginBooks.sol";

/// @title MarginViews
/// @notice The vault's raw views of its books (`IMarginVault`) and the pool's reads of the traders' side
/// (`IMarginVaultForPool`). Only the vault carries them: its modules, which share its storage, have no use for
/// them, and leaving them out keeps each under EIP-170 with room.
abstract contract MarginViews is MarginBooks, IMarginVault, IMarginVaultForPool {

    function marketCount() external view returns (uint256) {
        return _markets.length;
    }

    function market(uint256 marketId) external view returns (Market memory) {
        return _market(marketId);
    }

    function marketState(uint256 marketId) external view returns (MarketState memory) {
        return _marketState(marketId);
    }

    function position(uint256 positionId) external view returns (IsolatedPosition memory) {
        return _positions[positionId];
    }

    function accountHealthAt(address account, MarketState[] memory states, uint256[] memory collateralPricesWad)
        external
        view
        returns (Health memory)
    {
        return _accountHealthAt(account, states, collateralPricesWad);
    }

    function crossPosition(address account, uint256 marketId) external view returns (CrossPosition memory) {
        return _crossPositions[account][marketId];
    }

    function collateralBalance(address account, address token) external view returns (uint256) {
        return _collateral[account][token];
    }

    function collateralTokens() external view returns (address[] memory) {
        return _collateralTokens;
    }

    function collateralConfig(address token) external view returns (CollateralConfig memory) {
        return _collateralConfig[token];
    }

    function openPositionCount() external view returns (uint256) {
        return _openPositionIds.length;
    }

    function openPositions(uint256 start, uint256 count)
        external
        view
        returns (uint256[] memory ids, IsolatedPosition[] memory positions)
    {
        uint256 end = Math.min(_openPositionIds.length, start + count);
        uint256 n = end > start ? end - start : 0;
        ids = new uint256[](n);
        positions = new IsolatedPosition[](n);
        for (uint256 i = 0; i < n; ++i) {
            ids[i] = _openPositionIds[start + i];
            positions[i] = _positions[ids[i]];
        }
    }

    /// @notice Bad debt of `marketId` left to auto-deleveraging, quote tokens, owed by its profitable longs
    /// (`long`) or shorts.
    function deleverageDeficit(uint256 marketId, bool long) external view returns (uint256) {
        return _deleverageDeficit[marketId][long];
    }

    /// @notice Whether `account` is margined on its net risk (portfolio margin).
    function portfolioMargin(address account) external view returns (bool) {
        return _crossMeta[account].portfolio;
    }

    function crossAccountCount() external view returns (uint256) {
        return _crossAccounts.length;
    }

    function crossAccounts(uint256 start, uint256 count) external view returns (address[] memory accounts) {
        uint256 end = Math.min(_crossAccounts.length, start + count);
        uint256 n = end > start ? end - start : 0;
        accounts = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            accounts[i] = _crossAccounts[start + i];
        }
    }

    /// @inheritdoc IMarginVaultForPool
    function unrealizedTraderPnlUsd() external view returns (int256 pnlUsd) {
        for (uint256 i = 0; i < _markets.length; ++i) {
            Market storage m = _markets[i];
            int256 netSize = m.netSize;
            if (netSize == 0 && m.netEntryNotionalUsd == 0 && m.netFundingEntryUsd == 0) continue;
            uint256 price = oracle.priceWad(m.asset);
            // netSize * price rounded up: the pool's debt to traders is never understated.
            int256 markUsd = netSize >= 0
                ? int256(MarginMath.mulWadUp(uint256(netSize), price))
                : -int256(MarginMath.mulWadDown(uint256(-netSize), price));
            pnlUsd += markUsd - m.netEntryNotionalUsd
                + MarginMath.tradersFundingUsdCeil(netSize, _fundingIndexAt(m, price), m.netFundingEntryUsd);
        }
        // the profitable side owes the deleveraging deficit out of its profit: the pool's debt is that smaller
        pnlUsd -= int256(MarginMath.quoteToUsdDown(totalDeleverageDeficit, quoteDecimals, _quotePriceWad()));
    }

    /// @inheritdoc IMarginVaultForPool
    function quotePriceWad() external view override(IMarginVault, IMarginVaultForPool) returns (uint256) {
        return _quotePriceWad();
    }

    /// @inheritdoc IMarginVaultForPool
    function requiredPoolValueUsd() external view returns (uint256 required) {
        for (uint256 i = 0; i < _markets.length; ++i) {
            Market storage m = _markets[i];
            uint256 oi = m.longOpenInterest + m.shortOpenInterest;
            if (oi == 0) continue;
            uint256 oiUsd = MarginMath.mulWadUp(oi, oracle.priceWad(m.asset));
            required = Math.max(required, MarginMath.mulDivUp(oiUsd, ConstantsLib.WAD, m.params.openInterestCapWad));
        }
    }

    /// @notice Notional (USD wad, at the oracle price) liquidations may still close in `marketId` in this
    /// block; `type(uint256).max` for a market without a cap.
    function liquidationRoomUsd(uint256 marketId) external view returns (uint256) {
        return _liquidationRoomUsd(marketId);
    }

    /// @notice Bad debt the LP pool may still absorb from `marketId`'s liquidations today, quote tokens:
    /// `poolLossCapWad` of its trading liquidity less what it absorbed today (max: no cap).
    function poolLossRoom(uint256 marketId) external view returns (uint256) {
        return _poolLossRoom(marketId);
    }
}
