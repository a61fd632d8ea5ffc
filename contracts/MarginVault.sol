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
import {IMarginAdmin} from "./interfaces/IMarginAdmin.sol";
import {IMarginCross} from "./interfaces/IMarginCross.sol";
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
import {MarginViews} from "./MarginViews.sol";

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
contract MarginVault is MarginViews, IMarginLiquidation, IMarginAdmin, IMarginCross, Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;
    using SafeCast for int256;

    /// @notice The liquidation module (same storage layout, no state of its own).
    address public immutable liquidator;
    /// @notice The owner's module: markets, parameters, collateral tokens (same storage layout, no state).
    address public immutable admin;
    /// @notice The cross-account module: collateral, cross trades, margin mode (same storage layout, no state).
    address public immutable crossModule;

    /// @param modules the `MarginLiquidator`, `MarginAdmin` and `MarginCross` to run by delegatecall, each deployed with the
    /// same quote token, oracle, pool, insurance fund and defences as this vault (checked here). They are
    /// deployed apart, not by this constructor: the vault's creation code would otherwise carry theirs, near
    /// EIP-3860's limit on creation code.
    constructor(
        IERC20 quote,
        IOracleAdapter oracle_,
        ILPPool pool_,
        IInsuranceFund insurance_,
        address owner_,
        Defences memory defences,
        address[3] memory modules
    ) MarginBooks(quote, IERC20Metadata(address(quote)).decimals(), oracle_, pool_, insurance_, defences) Ownable(owner_) {
        for (uint256 i = 0; i < 3; ++i) {
            MarginBooks module = MarginBooks(modules[i]);
            if (
                module.quoteToken() != address(quote) || module.oracle() != oracle_ || module.pool() != pool_
                    || module.insuranceFund() != insurance_
                    || module.liquidationAtFillPrice() != defences.liquidationAtFillPrice
                    || module.staleCollateralAtZero() != defences.staleCollateralAtZero
                    || module.quoteAtFeed() != defences.quoteAtFeed
            ) revert ErrorsLib.ModuleMismatch(modules[i]);
        }
        (liquidator, admin, crossModule) = (modules[0], modules[1], modules[2]);
    }

    // ================================================================================== admin

    /// @inheritdoc IMarginAdmin
    function createMarket(address, MarketParams calldata) external onlyOwner returns (uint256) {
        _delegateTo(admin);
    }

    /// @inheritdoc IMarginAdmin
    function setMarketParams(uint256, MarketParams calldata) external onlyOwner {
        _delegateTo(admin);
    }

    /// @inheritdoc IMarginAdmin
    function applyMarketParams(uint256) external {
        _delegateTo(admin);
    }

    /// @inheritdoc IMarginAdmin
    function setCollateral(address, uint256, uint256) external onlyOwner {
        _delegateTo(admin);
    }

    /// @inheritdoc IMarginAdmin
    function applyCollateral(address) external {
        _delegateTo(admin);
    }

    // ================================================================================== liquidation

    /// @inheritdoc IMarginLiquidation
    function liquidateIsolated(uint256) external {
        _delegateTo(liquidator);
    }

    /// @inheritdoc IMarginLiquidation
    function liquidateCross(address) external {
        _delegateTo(liquidator);
    }

    /// @inheritdoc IMarginLiquidation
    function deleverageIsolated(uint256) external {
        _delegateTo(liquidator);
    }

    /// @inheritdoc IMarginLiquidation
    function deleverageCross(address, uint256) external {
        _delegateTo(liquidator);
    }

    /// @dev Run the call on `target`, a module, with this vault's storage; bubble its result or revert as is.
    function _delegateTo(address target) internal {
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
        Fill memory f = _trade(marketId, 0, 0, 0, size, s);
        positionId = nextPositionId++;
        IsolatedPosition storage p = _positions[positionId];
        (p.owner, p.marketId, p.size, p.margin) = (msg.sender, marketId.toUint32(), size.toInt128(), margin.toUint128());
        (p.entryPriceWad, p.fundingEntryWad) = (f.fillPriceWad.toUint128(), s.fundingIndexWad.toInt128());
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
    /// A reduce realises its PnL into the margin; every trade realises the funding accrued since the last.
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
        Fill memory f = _trade(p.marketId, p.size, p.entryPriceWad, p.fundingEntryWad, sizeDelta, s);
        int256 realized = MarginMath.signedUsdToQuoteFloor(f.realizedPnlUsd, quoteDecimals, _quotePriceWad());
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
        (p.size, p.entryPriceWad, p.margin) =
            (f.newSize.toInt128(), f.newEntryPriceWad.toUint128(), uint256(margin).toUint128());
        p.fundingEntryWad = s.fundingIndexWad.toInt128();
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
        uint256 marginUsd = MarginMath.quoteToUsdDown(p.margin, quoteDecimals, _quotePriceWad());
        uint256 leverage = marginUsd == 0 ? type(uint256).max : MarginMath.mulDivUp(notional, ConstantsLib.WAD, marginUsd);
        if (leverage > mp.maxLeverageWad) revert ErrorsLib.LeverageTooHigh(leverage, mp.maxLeverageWad);
        Health memory h = _isolatedHealth(p, s);
        if (!MarginMath.meetsInitial(h)) revert ErrorsLib.BelowInitialMargin(h.equityUsd, h.initialUsd);
    }

    // ================================================================================== cross

    /// @inheritdoc IMarginCross
    function depositCollateral(address, uint256) external {
        _delegateTo(crossModule);
    }

    /// @inheritdoc IMarginCross
    function withdrawCollateral(address, uint256) external {
        _delegateTo(crossModule);
    }

    /// @inheritdoc IMarginCross
    function tradeCross(uint256, int256) external {
        _delegateTo(crossModule);
    }

    /// @inheritdoc IMarginCross
    function setPortfolioMargin(bool) external {
        _delegateTo(crossModule);
    }
}
