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
    /// @dev Volatility computed for the feed's latest round: a pure function of the rounds, so valid until
    /// the next round. One slot.
    struct VolatilityCache {
        uint80 roundId;
        uint176 volWad;
    }

    mapping(address asset => FeedConfig) internal _feeds;
    mapping(address asset => VolatilityCache) internal _volCache;

    /// @notice Emitted when the volatility of `asset` at `roundId` is cached.
    event VolatilityCached(address indexed asset, uint80 roundId, uint256 hourlyVolWad);

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
        delete _volCache[asset];
        emit FeedSet(asset, feed, heartbeat, decimals, volWindowRounds, minPriceWad, maxPriceWad);
    }

    // ============================================================================ views

    function feedConfig(address asset) external view returns (FeedConfig memory) {
        return _feeds[asset];
    }

    /// @inheritdoc IOracleAdapter
    function priceWad(address asset) external view returns (uint256 price) {
        (,,, price) = _latest(asset);
    }

    /// @inheritdoc IOracleAdapter
    function hourlyVolatilityWad(address asset) external view returns (uint256) {
        (uint80 roundId, int256 answer, uint256 updatedAt) = _latestRound(_config(asset));
        return _volatility(asset, roundId, answer, updatedAt);
    }

    /// @inheritdoc IOracleAdapter
    function priceAndVolatility(address asset) external view returns (uint256 price, uint256 hourlyVolWad) {
        (uint80 roundId, int256 answer, uint256 updatedAt, uint256 p) = _latest(asset);
        return (p, _volatility(asset, roundId, answer, updatedAt));
    }

    /// @notice Cache the volatility of `asset` at its feed's latest round, so that every read until the next
    /// round costs one storage slot instead of a walk through the rounds. Anyone may call it; the oracle
    /// agent does after each round it pushes.
    function cacheVolatility(address asset) external returns (uint256 hourlyVolWad) {
        (uint80 roundId, int256 answer, uint256 updatedAt) = _latestRound(_config(asset));
        hourlyVolWad = _computeVolatility(_feeds[asset], roundId, answer, updatedAt);
        _volCache[asset] = VolatilityCache(roundId, uint176(hourlyVolWad));
        emit VolatilityCached(asset, roundId, hourlyVolWad);
    }

    function _latestRound(FeedConfig memory c) internal view returns (uint80 roundId, int256 answer, uint256 updatedAt) {
        (roundId, answer,, updatedAt,) = AggregatorV3Interface(c.feed).latestRoundData();
    }

    /// @dev The latest round, checked for sign, staleness and bounds, and its normalised price.
    function _latest(address asset) internal view returns (uint80 roundId, int256 answer, uint256 updatedAt, uint256 price) {
        FeedConfig memory c = _config(asset);
        (roundId, answer, updatedAt) = _latestRound(c);
        if (answer <= 0) revert ErrorsLib.NonPositivePrice(asset, answer);
        if (updatedAt == 0 || (block.timestamp > updatedAt && block.timestamp - updatedAt > c.heartbeat)) {
            revert ErrorsLib.StalePrice(asset, updatedAt, block.timestamp);
        }
        price = uint256(answer) * 10 ** (ConstantsLib.USD_DECIMALS - c.decimals);
        if (price < c.minPriceWad || price > c.maxPriceWad) {
            revert ErrorsLib.PriceOutOfBounds(asset, price, c.minPriceWad, c.maxPriceWad);
        }
    }

    function _volatility(address asset, uint80 roundId, int256 answer, uint256 updatedAt) internal view returns (uint256) {
        VolatilityCache memory v = _volCache[asset];
        if (v.roundId == roundId && roundId != 0) return v.volWad;
        return _computeVolatility(_feeds[asset], roundId, answer, updatedAt);
    }

    /// @dev Walk back from the latest round; a round that is missing or unreadable (start of the feed, a
    /// Chainlink phase boundary) ends the window.
    function _computeVolatility(FeedConfig memory c, uint80 roundId, int256 newer, uint256 lastTime)
        internal
        view
        returns (uint256)
    {
        AggregatorV3Interface feed = AggregatorV3Interface(c.feed);
        uint256 sumSquaredReturnsWad;
        uint256 firstTime = lastTime;
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
        uint256 elapsed = lastTime > firstTime ? lastTime - firstTime : 1;
        return Math.sqrt(Math.mulDiv(sumSquaredReturnsWad, ConstantsLib.SECONDS_PER_HOUR, elapsed) * ConstantsLib.WAD);
    }

    function _config(address asset) internal view returns (FeedConfig memory c) {
        c = _feeds[asset];
        if (c.feed == address(0)) revert ErrorsLib.FeedNotSet(asset);
    }
}
