// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";

/// @title MockFeedProxy
/// @notice A stand-in for Chainlink's `EACAggregatorProxy`, the contract that sits at a feed's public
/// address (ETH/USD at 0x5f4e...8419 on mainnet). It behaves like the real one where a reader can see:
/// the proxy forwards to its current aggregator, and round ids are phase-encoded,
/// `roundId = phaseId << 64 | aggregatorRoundId`, so `getRoundData` of an older round is routed to the
/// aggregator of that round's phase. The owner moves the proxy to a new aggregator in two steps
/// (`proposeAggregator`, `confirmAggregator`), which starts a new phase.
contract MockFeedProxy is AggregatorV3Interface, Ownable {
    uint256 private constant PHASE_OFFSET = 64;

    uint16 public phaseId;
    address public proposedAggregator;
    mapping(uint16 phase => address aggregator) public phaseAggregators;

    event AggregatorProposed(address indexed current, address indexed proposed);
    event AggregatorConfirmed(address indexed previous, address indexed latest);

    error NotProposed(address aggregator);
    error NoAggregatorForPhase(uint16 phase);

    constructor(address aggregator_, address owner_) Ownable(owner_) {
        _setAggregator(aggregator_);
    }

    /// @notice The aggregator of the current phase.
    function aggregator() public view returns (address) {
        return phaseAggregators[phaseId];
    }

    function proposeAggregator(address aggregator_) external onlyOwner {
        proposedAggregator = aggregator_;
        emit AggregatorProposed(aggregator(), aggregator_);
    }

    function confirmAggregator(address aggregator_) external onlyOwner {
        if (aggregator_ != proposedAggregator || aggregator_ == address(0)) revert NotProposed(aggregator_);
        address previous = aggregator();
        delete proposedAggregator;
        _setAggregator(aggregator_);
        emit AggregatorConfirmed(previous, aggregator_);
    }

    function decimals() external view returns (uint8) {
        return AggregatorV3Interface(aggregator()).decimals();
    }

    function description() external view returns (string memory) {
        return AggregatorV3Interface(aggregator()).description();
    }

    function version() external view returns (uint256) {
        return AggregatorV3Interface(aggregator()).version();
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        uint16 phase = phaseId;
        (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) =
            AggregatorV3Interface(phaseAggregators[phase]).latestRoundData();
        return (_addPhase(phase, roundId), answer, startedAt, updatedAt, _addPhase(phase, answeredInRound));
    }

    function getRoundData(uint80 roundId) external view returns (uint80, int256, uint256, uint256, uint80) {
        uint16 phase = uint16(roundId >> PHASE_OFFSET);
        address source = phaseAggregators[phase];
        if (source == address(0)) revert NoAggregatorForPhase(phase);
        (uint80 id, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) =
            AggregatorV3Interface(source).getRoundData(uint80(uint64(roundId)));
        return (_addPhase(phase, id), answer, startedAt, updatedAt, _addPhase(phase, answeredInRound));
    }

    function _setAggregator(address aggregator_) internal {
        uint16 phase = phaseId + 1;
        phaseId = phase;
        phaseAggregators[phase] = aggregator_;
    }

    function _addPhase(uint16 phase, uint80 roundId) internal pure returns (uint80) {
        return uint80(uint256(phase) << PHASE_OFFSET | uint64(roundId));
    }
}
