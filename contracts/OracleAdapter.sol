// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {ConstantsLib} from "./libraries/ConstantsLib.sol";
import {ErrorsLib} from "./libraries/ErrorsLib.sol";

/// @title OracleAdapter
/// @notice Reads Chainlink-shaped feeds: heartbeat, answer bounds, decimals normalisation, and the
/// realised volatility that drives the dynamic maintenance buffer.
contract OracleAdapter is IOracleAdapter, Ownable {
    mapping(address asset => FeedConfig) internal _feeds;

    constructor(address owner_) Ownable(owner_) {}

    // ============================================================================ admin

    /// @notice Set the feed of `asset`. Decimals are read from the feed itself.
    function setFeed(
        address asset,
        address feed,
        uint32 heartbeat,
        uint16 volWindowRounds,
        uint256 minPriceWad,
        uint256 maxPriceWad
    ) external onlyOwner {
        uint8 decimals = AggregatorV3Interface(feed).decimals();
        if (decimals > ConstantsLib.MAX_FEED_DECIMALS) {
            revert ErrorsLib.ParamOutOfBounds("feedDecimals", decimals, 0, ConstantsLib.MAX_FEED_DECIMALS);
        }
        if (heartbeat == 0) revert ErrorsLib.ParamOutOfBounds("heartbeat", 0, 1, type(uint32).max);
        if (volWindowRounds < 2 || volWindowRounds > ConstantsLib.MAX_VOL_WINDOW_ROUNDS) {
            revert ErrorsLib.ParamOutOfBounds("volWindowRounds", volWindowRounds, 2, ConstantsLib.MAX_VOL_WINDOW_ROUNDS);
        }
        if (minPriceWad == 0 || maxPriceWad <= minPriceWad) {
            revert ErrorsLib.ParamOutOfBounds("priceBounds", maxPriceWad, minPriceWad + 1, type(uint256).max);
        }
        _feeds[asset] = FeedConfig(feed, heartbeat, decimals, volWindowRounds, minPriceWad, maxPriceWad);
        emit FeedSet(asset, feed, heartbeat, decimals, volWindowRounds, minPriceWad, maxPriceWad);
    }

    // ============================================================================ views

    function feedConfig(address asset) external view returns (FeedConfig memory) {
        return _feeds[asset];
    }

    /// @inheritdoc IOracleAdapter
    function priceWad(address asset) external view returns (uint256) {
        FeedConfig memory c = _config(asset);
        (, int256 answer,, uint256 updatedAt,) = AggregatorV3Interface(c.feed).latestRoundData();
        if (answer <= 0) revert ErrorsLib.NonPositivePrice(asset, answer);
        if (updatedAt == 0 || (block.timestamp > updatedAt && block.timestamp - updatedAt > c.heartbeat)) {
            revert ErrorsLib.StalePrice(asset, updatedAt, block.timestamp);
        }
        uint256 price = uint256(answer) * 10 ** (ConstantsLib.USD_DECIMALS - c.decimals);
        if (price < c.minPriceWad || price > c.maxPriceWad) {
            revert ErrorsLib.PriceOutOfBounds(asset, price, c.minPriceWad, c.maxPriceWad);
        }
        return price;
    }

    /// @inheritdoc IOracleAdapter
    function hourlyVolatilityWad(address asset) external view returns (uint256) {
        FeedConfig memory c = _config(asset);
        AggregatorV3Interface feed = AggregatorV3Interface(c.feed);
        (uint80 roundId, int256 newer,, uint256 firstTime,) = feed.latestRoundData();
        uint256 sumSquaredReturnsWad;
        // Walk back through the rounds; a round that is missing or unreadable (start of the feed,
        // a Chainlink phase boundary) ends the window.
        for (uint256 i = 0; i < c.volWindowRounds && roundId > 1; ++i) {
            roundId -= 1;
            try feed.getRoundData(roundId) returns (uint80, int256 older, uint256, uint256 olderTime, uint80) {
                if (older <= 0 || newer <= 0 || olderTime == 0) break;
                uint256 diff = newer > older ? uint256(newer - older) : uint256(older - newer);
                uint256 r = Math.mulDiv(diff, ConstantsLib.WAD, uint256(older));
                sumSquaredReturnsWad += Math.mulDiv(r, r, ConstantsLib.WAD);
                newer = older;
                firstTime = olderTime;
            } catch {
                break;
            }
        }
        if (sumSquaredReturnsWad == 0) return 0;
        uint256 elapsed = block.timestamp > firstTime ? block.timestamp - firstTime : 1;
        uint256 hourlyVariance = Math.mulDiv(sumSquaredReturnsWad, ConstantsLib.SECONDS_PER_HOUR, elapsed);
        return Math.sqrt(hourlyVariance * ConstantsLib.WAD);
    }

    function _config(address asset) internal view returns (FeedConfig memory c) {
        c = _feeds[asset];
        if (c.feed == address(0)) revert ErrorsLib.FeedNotSet(asset);
    }
}
