// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20, ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ILPPool, IMarginVaultForPool} from "./interfaces/IProtocol.sol";
import {ErrorsLib} from "./libraries/ErrorsLib.sol";
import {MarginMath} from "./libraries/MarginMath.sol";

/// @title LPPool
/// @notice ERC-4626 pool of quote tokens that is the counterparty of every open position. Its value is
/// its cash minus what it owes traders on paper, so the share price moves against traders' PnL.
/// @dev Virtual shares (decimals offset 6) defeat first-depositor inflation. Withdrawals are limited to
/// the value that open interest does not need under the markets' caps.
/// Just-in-time liquidity defence, one parameter, `depositCooldown` (seconds, 0 turns it off):
/// - shares minted by a deposit cannot be redeemed, withdrawn or transferred for the cooldown, so a deposit
///   cannot leave in the block it came (and take its share of the fee a trade just paid);
/// - trades are priced and capped against `tradingLiquidity`: cash less the deposits of the current and the
///   previous cooldown-long epoch, so a fresh deposit never lowers what a trade pays.
/// Exit-ahead-of-bad-debt defence, one parameter, `exitDelay` (seconds, 0 turns it off): the pool's value
/// nets traders' PnL in aggregate, so between the oracle round that puts a position under water and its
/// liquidation it counts the loss beyond the position's margin as collectable. Exits therefore take two
/// steps: `requestRedeem` escrows the shares (they keep bearing the pool's losses), and `claimRedeem`, at
/// least `exitDelay` later, pays the lower of their value at the request and at the claim. Bad debt realised
/// in between (keepers have `exitDelay` to liquidate) is borne by the exiting LP too, and an exit requested
/// ahead of an oracle round is paid at the round's price if that is lower. With a delay the one-step
/// ERC-4626 `redeem` and `withdraw` are closed (their `max*` return 0).
contract LPPool is ILPPool, ERC4626, Ownable2Step {
    using SafeERC20 for IERC20;

    /// @dev Deposits of the current epoch (`block.timestamp / depositCooldown`) and of the one before it
    /// (0 when that epoch saw none), one slot.
    struct RecentDeposits {
        uint32 currentEpoch;
        uint96 current;
        uint96 previous;
    }

    uint8 internal immutable _quoteDecimals;
    /// @notice Seconds a deposit's shares stay locked, and its assets out of `tradingLiquidity`.
    uint256 public immutable depositCooldown;
    IMarginVaultForPool public vault;
    /// @notice When each holder's shares unlock (their latest deposit plus the cooldown).
    mapping(address holder => uint256) public lockedUntil;
    RecentDeposits internal _recent;
    /// @notice Seconds between an exit's request and its claim.
    uint256 public immutable exitDelay;

    /// @notice An exit waiting for its claim: shares escrowed by the pool, their value when requested.
    struct ExitRequest {
        uint128 shares;
        uint64 readyAt;
        uint256 assetsAtRequest;
    }

    mapping(address owner => ExitRequest) internal _exits;

    /// @notice Emitted when the vault is linked (once).
    event VaultSet(address vault);
    /// @notice Emitted when the pool pays the vault: trader profit or bad debt the LPs absorb.
    event PaidVault(uint256 amount);
    /// @notice Emitted when an LP asks to exit: `shares` escrowed, worth `assets` now, claimable at `readyAt`.
    event ExitRequested(address indexed owner, uint256 shares, uint256 assets, uint256 readyAt);
    /// @notice Emitted when an LP takes its escrowed shares back.
    event ExitCancelled(address indexed owner, uint256 shares);
    /// @notice Emitted when an exit is paid: `assets` for `shares` (the lower of both valuations).
    event ExitClaimed(address indexed owner, address indexed caller, uint256 shares, uint256 assets);

    constructor(IERC20 quote, address owner_, uint256 depositCooldown_, uint256 exitDelay_)
        ERC20("Margin LP", "mLP")
        ERC4626(quote)
        Ownable(owner_)
    {
        _quoteDecimals = IERC20Metadata(address(quote)).decimals();
        depositCooldown = depositCooldown_;
        exitDelay = exitDelay_;
    }

    function setVault(address vault_) external onlyOwner {
        if (address(vault) != address(0)) revert ErrorsLib.AlreadySet();
        vault = IMarginVaultForPool(vault_);
        emit VaultSet(vault_);
    }

    /// @inheritdoc ILPPool
    function payVault(uint256 amount) external {
        if (msg.sender != address(vault)) revert ErrorsLib.NotVault(msg.sender);
        emit PaidVault(amount);
        IERC20(asset()).safeTransfer(msg.sender, amount);
    }

    /// @notice Cash minus traders' net unrealised PnL (rounded against the pool), floored at zero.
    function totalAssets() public view override(ERC4626, ILPPool) returns (uint256) {
        uint256 cash = IERC20(asset()).balanceOf(address(this));
        if (address(vault) == address(0)) return cash;
        int256 pnlUsd = vault.unrealizedTraderPnlUsd();
        uint256 quotePrice = vault.quotePriceWad();
        // What the pool owes traders rounds up, what they owe it rounds down (in quote tokens at their price).
        int256 value = pnlUsd > 0
            ? int256(cash) - int256(MarginMath.usdToQuoteUp(uint256(pnlUsd), _quoteDecimals, quotePrice))
            : int256(cash + MarginMath.usdToQuoteDown(uint256(-pnlUsd), _quoteDecimals, quotePrice));
        return value > 0 ? uint256(value) : 0;
    }

    /// @notice Cash (quote tokens) that open interest does not need under the markets' caps, which the
    /// vault applies to this pool's cash; what LPs may take out now.
    function freeLiquidity() public view returns (uint256) {
        uint256 cash = IERC20(asset()).balanceOf(address(this));
        uint256 required = address(vault) == address(0)
            ? 0
            : MarginMath.usdToQuoteUp(vault.requiredPoolValueUsd(), _quoteDecimals, vault.quotePriceWad());
        return cash > required ? cash - required : 0;
    }

    /// @inheritdoc ILPPool
    function tradingLiquidity() external view returns (uint256) {
        uint256 cash = IERC20(asset()).balanceOf(address(this));
        uint256 young = _youngDeposits();
        return cash > young ? cash - young : 0;
    }

    /// @dev Deposits of the current and the previous epoch: every deposit younger than the cooldown (and
    /// some up to twice as old).
    function _youngDeposits() internal view returns (uint256 young) {
        if (depositCooldown == 0) return 0;
        uint256 epoch = block.timestamp / depositCooldown;
        RecentDeposits memory r = _recent;
        if (r.currentEpoch == epoch) young = r.current + r.previous;
        else if (uint256(r.currentEpoch) + 1 == epoch) young = r.current;
    }

    function _deposit(address caller, address receiver, uint256 assets, uint256 shares) internal override {
        if (depositCooldown > 0) {
            // Locking someone else's shares would let anyone freeze any holder: deposits are for oneself.
            if (receiver != caller) revert ErrorsLib.DepositForOther(caller, receiver);
            lockedUntil[receiver] = block.timestamp + depositCooldown;
            uint32 epoch = SafeCast.toUint32(block.timestamp / depositCooldown);
            RecentDeposits memory r = _recent;
            if (r.currentEpoch != epoch) {
                (r.currentEpoch, r.current, r.previous) = (epoch, 0, r.currentEpoch + 1 == epoch ? r.current : 0);
            }
            r.current += SafeCast.toUint96(assets);
            _recent = r;
        }
        super._deposit(caller, receiver, assets, shares);
    }

    /// @dev Locked shares move nowhere: no redeem, withdraw or transfer before the cooldown ends.
    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && lockedUntil[from] > block.timestamp) revert ErrorsLib.SharesLocked(from, lockedUntil[from]);
        super._update(from, to, value);
    }

    /// @notice Escrow `shares` of the caller's for an exit claimable `exitDelay` from now, at no more than
    /// their value now. One exit at a time per owner; locked shares cannot be requested.
    function requestRedeem(uint256 shares) external returns (uint256 assets) {
        if (shares == 0) revert ErrorsLib.ZeroAmount();
        if (_exits[msg.sender].shares != 0) revert ErrorsLib.ExitPending(msg.sender);
        assets = previewRedeem(shares);
        uint256 readyAt = block.timestamp + exitDelay;
        _exits[msg.sender] = ExitRequest(SafeCast.toUint128(shares), SafeCast.toUint64(readyAt), assets);
        _transfer(msg.sender, address(this), shares); // reverts on locked shares or a short balance
        emit ExitRequested(msg.sender, shares, assets, readyAt);
    }

    /// @notice Pay `owner`'s exit (anyone may): the lower of the shares' value at the request and now,
    /// within the free liquidity. The escrowed shares are burnt; what they were worth above that stays
    /// with the LPs who stay.
    function claimRedeem(address owner) external returns (uint256 assets) {
        ExitRequest memory r = _exits[owner];
        if (r.shares == 0) revert ErrorsLib.NoExitPending(owner);
        if (block.timestamp < r.readyAt) revert ErrorsLib.ExitNotReady(owner, r.readyAt);
        assets = Math.min(r.assetsAtRequest, previewRedeem(r.shares));
        uint256 free = freeLiquidity();
        if (assets > free) revert ErrorsLib.InsufficientFreeLiquidity(assets, free);
        delete _exits[owner];
        _burn(address(this), r.shares);
        IERC20(asset()).safeTransfer(owner, assets);
        emit ExitClaimed(owner, msg.sender, r.shares, assets);
    }

    /// @notice Take back the caller's escrowed shares (an exit the free liquidity cannot pay yet, say).
    /// Harmless to the other LPs: the shares bore the pool's losses while escrowed.
    function cancelRedeem() external {
        ExitRequest memory r = _exits[msg.sender];
        if (r.shares == 0) revert ErrorsLib.NoExitPending(msg.sender);
        delete _exits[msg.sender];
        _transfer(address(this), msg.sender, r.shares);
        emit ExitCancelled(msg.sender, r.shares);
    }

    /// @notice `owner`'s pending exit: escrowed shares, their value at the request, when it can be claimed.
    function pendingExit(address owner) external view returns (ExitRequest memory) {
        return _exits[owner];
    }

    /// @notice Shares `owner` may put in an exit request now (0 while locked or while one is pending).
    function maxRequestRedeem(address owner) external view returns (uint256) {
        if (lockedUntil[owner] > block.timestamp || _exits[owner].shares != 0) return 0;
        return balanceOf(owner);
    }

    function maxWithdraw(address owner) public view override returns (uint256) {
        if (exitDelay > 0 || lockedUntil[owner] > block.timestamp) return 0;
        return Math.min(super.maxWithdraw(owner), freeLiquidity());
    }

    function maxRedeem(address owner) public view override returns (uint256) {
        if (exitDelay > 0 || lockedUntil[owner] > block.timestamp) return 0;
        return Math.min(super.maxRedeem(owner), convertToShares(freeLiquidity()));
    }

    function _decimalsOffset() internal pure override returns (uint8) {
        return 6;
    }
}
