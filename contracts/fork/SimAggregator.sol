// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";

/// @title SimAggregator
/// @notice The aggregator a fork run puts behind a real Chainlink proxy. The simulation copies this
/// contract's runtime code over the proxy's current aggregator (`anvil_setCode`), copies the feed's
/// recent rounds into it and then writes each new round with `anvil_setStorageAt`, so the real proxy
/// at the real address keeps its phase and returns the simulated price under the feed's own round ids.
/// @dev The constructor only fixes the immutables (decimals, description, version) that end up in the
/// copied runtime code. State lives at hashed slots, far from whatever the replaced aggregator left in
/// its storage, in a layout `simulation/fork.py` writes directly:
///   - `LATEST_ROUND_SLOT`: the latest round id;
///   - `keccak256(abi.encode(roundId, ROUNDS_SLOT))`: `uint64(updatedAt) << 192 | uint192(int192(answer))`.
contract SimAggregator is AggregatorV3Interface {
    bytes32 public constant LATEST_ROUND_SLOT = keccak256("marginsim.SimAggregator.latestRound");
    bytes32 public constant ROUNDS_SLOT = keccak256("marginsim.SimAggregator.rounds");

    uint8 public immutable decimals;
    uint256 public immutable version;
    bytes32 internal immutable _description;
    uint256 internal immutable _descriptionLength;

    error DescriptionTooLong(uint256 length);

    constructor(uint8 decimals_, string memory description_, uint256 version_) {
        bytes memory d = bytes(description_);
        if (d.length > 32) revert DescriptionTooLong(d.length);
        decimals = decimals_;
        version = version_;
        _description = bytes32(d);
        _descriptionLength = d.length;
    }

    function description() external view returns (string memory s) {
        s = new string(_descriptionLength);
        bytes32 word = _description;
        assembly ("memory-safe") {
            mstore(add(s, 32), word)
        }
    }

    function latestRound() public view returns (uint256 roundId) {
        bytes32 slot = LATEST_ROUND_SLOT;
        assembly ("memory-safe") {
            roundId := sload(slot)
        }
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        return getRoundData(uint80(latestRound()));
    }

    function getRoundData(uint80 roundId) public view returns (uint80, int256, uint256, uint256, uint80) {
        (int256 answer, uint256 updatedAt) = _round(roundId);
        require(updatedAt != 0, "No data present");
        return (roundId, answer, updatedAt, updatedAt, roundId);
    }

    function latestAnswer() external view returns (int256 answer) {
        (answer,) = _round(latestRound());
    }

    function latestTimestamp() external view returns (uint256 updatedAt) {
        (, updatedAt) = _round(latestRound());
    }

    function getAnswer(uint256 roundId) external view returns (int256 answer) {
        (answer,) = _round(roundId);
    }

    function getTimestamp(uint256 roundId) external view returns (uint256 updatedAt) {
        (, updatedAt) = _round(roundId);
    }

    function _round(uint256 roundId) internal view returns (int256 answer, uint256 updatedAt) {
        bytes32 slot = keccak256(abi.encode(roundId, ROUNDS_SLOT));
        uint256 word;
        assembly ("memory-safe") {
            word := sload(slot)
        }
        answer = int256(int192(uint192(word)));
        updatedAt = word >> 192;
    }
}
