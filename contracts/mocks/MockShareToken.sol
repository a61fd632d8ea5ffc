// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title MockShareToken
/// @notice A share-based (rebasing) ERC-20 in the manner of Lido's stETH: accounts hold shares and
/// `balanceOf` is `shares * pooled / totalShares`, so writing a balance into storage does not give
/// that balance. It stands in for the tokens a fork run must fund by impersonating holders.
contract MockShareToken is IERC20 {
    string public name;
    string public symbol;
    uint8 public immutable decimals;
    uint256 public totalShares;
    uint256 public totalSupply;
    mapping(address account => uint256) public sharesOf;
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
    }

    /// @notice Create `amount` of balance for `to` at the current share rate (the first mint fixes
    /// the rate at 1 share per unit).
    function mint(address to, uint256 amount) external {
        uint256 shares = totalShares == 0 ? amount : Math.mulDiv(amount, totalShares, totalSupply);
        totalShares += shares;
        totalSupply += amount;
        sharesOf[to] += shares;
        emit Transfer(address(0), to, amount);
    }

    /// @notice Rewards or a slashing: every balance moves by the same factor.
    function rebase(uint256 newTotalSupply) external {
        totalSupply = newTotalSupply;
    }

    function balanceOf(address account) public view returns (uint256) {
        return totalShares == 0 ? 0 : Math.mulDiv(sharesOf[account], totalSupply, totalShares);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        allowance[from][msg.sender] -= amount;
        _move(from, to, amount);
        return true;
    }

    /// @dev Shares moved round down, as stETH's do: the recipient may get a wei or two less than
    /// `amount` (stETH's documented 1-2 wei corner case), never more than the sender had.
    function _move(address from, address to, uint256 amount) internal {
        uint256 shares = Math.mulDiv(amount, totalShares, totalSupply);
        sharesOf[from] -= shares;
        sharesOf[to] += shares;
        emit Transfer(from, to, amount);
    }
}
