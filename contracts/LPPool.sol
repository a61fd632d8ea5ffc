// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20, ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ILPPool, IMarginVaultForPool} from "./interfaces/IProtocol.sol";
import {ErrorsLib} from "./libraries/ErrorsLib.sol";
import {MarginMath} from "./libraries/MarginMath.sol";

/// @title LPPool
/// @notice ERC-4626 pool of quote tokens that is the counterparty of every open position. Its value is
/// its cash minus what it owes traders on paper, so the share price moves against traders' PnL.
/// @dev Virtual shares (decimals offset 6) defeat first-depositor inflation. Withdrawals are limited to
/// the value that open interest does not need under the markets' caps.
contract LPPool is ILPPool, ERC4626, Ownable {
    using SafeERC20 for IERC20;

    uint8 internal immutable _quoteDecimals;
    IMarginVaultForPool public vault;

    /// @notice Emitted when the vault is linked (once).
    event VaultSet(address vault);
    /// @notice Emitted when the pool pays the vault: trader profit or bad debt the LPs absorb.
    event PaidVault(uint256 amount);

    constructor(IERC20 quote, address owner_) ERC20("Margin LP", "mLP") ERC4626(quote) Ownable(owner_) {
        _quoteDecimals = IERC20Metadata(address(quote)).decimals();
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
        // What the pool owes traders rounds up, what they owe it rounds down.
        int256 value = pnlUsd > 0
            ? int256(cash) - int256(MarginMath.usdToQuoteUp(uint256(pnlUsd), _quoteDecimals))
            : int256(cash + MarginMath.usdToQuoteDown(uint256(-pnlUsd), _quoteDecimals));
        return value > 0 ? uint256(value) : 0;
    }

    /// @notice Cash (quote tokens) that open interest does not need under the markets' caps, which the
    /// vault applies to this pool's cash; what LPs may take out now.
    function freeLiquidity() public view returns (uint256) {
        uint256 cash = IERC20(asset()).balanceOf(address(this));
        uint256 required = address(vault) == address(0)
            ? 0
            : MarginMath.usdToQuoteUp(vault.requiredPoolValueUsd(), _quoteDecimals);
        return cash > required ? cash - required : 0;
    }

    function maxWithdraw(address owner) public view override returns (uint256) {
        return Math.min(super.maxWithdraw(owner), freeLiquidity());
    }

    function maxRedeem(address owner) public view override returns (uint256) {
        return Math.min(super.maxRedeem(owner), convertToShares(freeLiquidity()));
    }

    function _decimalsOffset() internal pure override returns (uint8) {
        return 6;
    }
}
