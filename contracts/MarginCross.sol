// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {ILPPool, IInsuranceFund} from "./interfaces/IProtocol.sol";
import {IMarginCross} from "./interfaces/IMarginCross.sol";
import {CrossPosition, MarketState, Defences} from "./interfaces/IMarginVault.sol";
import {MarginMath, Health} from "./libraries/MarginMath.sol";
import {ErrorsLib} from "./libraries/ErrorsLib.sol";
import {MarginBooks} from "./MarginBooks.sol";

/// @title MarginCross
/// @notice The vault's cross-account module: collateral in and out, cross trades, and the account's margin
/// mode (leg by leg, or portfolio: on its net risk). Like the other modules it holds no state and is only
/// ever run by the vault, by delegatecall, on the vault's storage; called directly it would act on its own
/// empty storage.
contract MarginCross is MarginBooks, IMarginCross, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;
    using SafeCast for int256;

    constructor(IERC20 quote, IOracleAdapter oracle_, ILPPool pool_, IInsuranceFund insurance_, Defences memory defences)
        MarginBooks(quote, IERC20Metadata(address(quote)).decimals(), oracle_, pool_, insurance_, defences)
    {}

    /// @inheritdoc IMarginCross
    function depositCollateral(address token, uint256 amount) external nonReentrant {
        if (amount == 0) revert ErrorsLib.ZeroAmount();
        if (token != address(_quote) && !_collateralConfig[token].enabled) revert UnsupportedCollateral(token);
        _collateral[msg.sender][token] += amount;
        emit CollateralDeposited(msg.sender, token, amount);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IMarginCross
    function setPortfolioMargin(bool on) external nonReentrant {
        CrossAccountMeta storage meta = _crossMeta[msg.sender];
        meta.portfolio = on;
        if (!on && meta.openCount > 0) _checkAccountInitial(msg.sender);
        emit PortfolioMarginSet(msg.sender, on);
    }

    /// @inheritdoc IMarginCross
    function withdrawCollateral(address token, uint256 amount) external nonReentrant {
        if (amount == 0) revert ErrorsLib.ZeroAmount();
        uint256 balance = _collateral[msg.sender][token];
        if (amount > balance) revert ErrorsLib.InsufficientCollateral(token, amount, balance);
        _collateral[msg.sender][token] = balance - amount;
        if (_crossMeta[msg.sender].openCount > 0) _checkAccountInitial(msg.sender);
        emit CollateralWithdrawn(msg.sender, token, amount);
        IERC20(token).safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IMarginCross
    function tradeCross(uint256 marketId, int256 sizeDelta) external nonReentrant {
        MarketState memory s = _marketState(marketId);
        CrossPosition storage cp = _crossPositions[msg.sender][marketId];
        int256 oldSize = cp.size;
        Fill memory f = _trade(marketId, oldSize, cp.entryPriceWad, cp.fundingEntryWad, sizeDelta, s);
        (cp.size, cp.entryPriceWad) = (f.newSize.toInt128(), f.newEntryPriceWad.toUint128());
        cp.fundingEntryWad = f.newSize == 0 ? int128(0) : s.fundingIndexWad.toInt128();
        if (oldSize == 0) _crossPositionOpened(msg.sender);
        if (f.newSize == 0) _crossPositionClosed(msg.sender);
        else _checkMinNotional(marketId, f.newSize, s.priceWad);
        int256 realized = MarginMath.signedUsdToQuoteFloor(f.realizedPnlUsd, quoteDecimals, _quotePriceWad());
        uint256 quoteBalance = _collateral[msg.sender][address(_quote)];
        if (realized < 0 && uint256(-realized) > quoteBalance) {
            revert InsufficientQuote(uint256(-realized), quoteBalance);
        }
        _collateral[msg.sender][address(_quote)] = uint256(int256(quoteBalance) + realized);
        if (f.increased) _checkAccountInitial(msg.sender);
        emit CrossTraded(msg.sender, marketId, sizeDelta, f.newSize, f.newEntryPriceWad, f.fillPriceWad, realized);
        _settleRealizedWithPool(realized);
    }

    function _checkAccountInitial(address account) internal view {
        Health memory h = _accountHealth(account);
        if (!MarginMath.meetsInitial(h)) revert ErrorsLib.BelowInitialMargin(h.equityUsd, h.initialUsd);
    }
}
