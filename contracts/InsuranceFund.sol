// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IInsuranceFund} from "./interfaces/IProtocol.sol";
import {ErrorsLib} from "./libraries/ErrorsLib.sol";

/// @notice The vault's cross withdrawal, as the fund uses it.
interface IVaultCollateral {
    function withdrawCollateral(address token, uint256 amount) external;
}

/// @title InsuranceFund
/// @notice Holds quote tokens: it receives its share of liquidation penalties and is the second step
/// of the bad-debt waterfall (after the account's own collateral, before the LP pool).
/// @dev Its balance is its token balance; anyone may top it up with a plain transfer.
contract InsuranceFund is IInsuranceFund, Ownable2Step {
    using SafeERC20 for IERC20;

    IERC20 public immutable token;
    address public vault;

    /// @notice Emitted when the vault is linked (once).
    event VaultSet(address vault);
    /// @notice Emitted when the fund pays bad debt: `requested` asked, `covered` paid.
    event Covered(uint256 requested, uint256 covered);

    constructor(IERC20 token_, address owner_) Ownable(owner_) {
        token = token_;
    }

    function setVault(address vault_) external onlyOwner {
        if (vault != address(0)) revert ErrorsLib.AlreadySet();
        vault = vault_;
        emit VaultSet(vault_);
    }

    /// @inheritdoc IInsuranceFund
    function cover(uint256 amount) external returns (uint256 covered) {
        if (msg.sender != vault) revert ErrorsLib.NotVault(msg.sender);
        uint256 held = token.balanceOf(address(this));
        covered = amount < held ? amount : held;
        emit Covered(amount, covered);
        if (covered > 0) token.safeTransfer(msg.sender, covered);
    }

    /// @notice Take out of the vault collateral it forfeited to this fund (a cross liquidation that left bad
    /// debt with collateral no feed could price), to `to`.
    function withdrawVaultCollateral(address collateral, uint256 amount, address to) external onlyOwner {
        IVaultCollateral(vault).withdrawCollateral(collateral, amount);
        IERC20(collateral).safeTransfer(to, amount);
    }

    function balance() external view returns (uint256) {
        return token.balanceOf(address(this));
    }
}
