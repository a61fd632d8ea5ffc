// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {ConstantsLib} from "./libraries/ConstantsLib.sol";
import {ErrorsLib} from "./libraries/ErrorsLib.sol";

/// @title OracleAdapter
/// @notice Reads Chainlink-shaped feeds: heartbeat, answer bounds, decimals normalisation, and the
/// realised volatility that drives the dynamic maintenance buffer.
/// @dev A feed is checked when set (its decimals as expected, a live positive answer within bounds); an
/// asset's first feed applies at once, a replacement `FEED_TIMELOCK` after it is proposed. Ownership moves
/// in two steps.
contract OracleAdapter is IOracleAdapter, Ownable2Step {
    /// @dev Volatility computed for the feed's latest round: a pure function of the rounds, so valid until
    /// the next round. One slot.
    struct VolatilityCache {
        uint80 roundId;
        uint176 volWad;
    }

    mapping(address asset => FeedConfig) internal _feeds;
    mapping(address asset => VolatilityCache) internal _volCache;

    /// @dev A proposed replacement feed and when it may be applied.
    struct PendingFeed {
        FeedConfig config;
        uint256 readyAt;
    }

    mapping(address asset => PendingFeed) internal _pendingFeeds;

    /// @notice Emitted when a replacement feed is proposed; anyone may apply it from `readyAt` on.
    event FeedProposed(address indexed asset, address feed, uint256 readyAt);

    /// @notice Emitted when the volatility of `asset` at `roundId` is cached.
    event VolatilityCached(address indexed asset, uint80 roundId, uint256 hourlyVolWad);

    constructor(address owner_) Ownable(owner_) {}

    // ============================================================================ admin

    /// @notice Set the feed of `asset` (at once for its first feed; a replacement is queued, see
    /// `applyFeed`). The feed must report `expectedDecimals` and a live, positive answer within the bounds.
    function setFeed(
        address asset,
        address feed,
        uint8 expectedDecimals,
        uint32 heartbeat,
        uint16 volWindowRounds,
        uint256 minPriceWad,
        uint256 maxPriceWad
    ) external onlyOwner {
        if (heartbeat == 0) revert ErrorsLib.ParamOutOfBounds("heartbeat", 0, 1, type(uint32).max);
        if (volWindowRounds < 2 || volWindowRounds > ConstantsLib.MAX_VOL_WINDOW_ROUNDS) {
            revert ErrorsLib.ParamOutOfBounds("volWindowRounds", volWindowRounds, 2, ConstantsLib.MAX_VOL_WINDOW_ROUNDS);
        }
        if (minPriceWad == 0 || maxPriceWad <= minPriceWad) {
            revert ErrorsLib.ParamOutOfBounds("priceBounds", maxPriceWad, minPriceWad + 1, type(uint256).max);
        }
        FeedConfig memory c = FeedConfig(feed, heartbeat, expectedDecimals, volWindowRounds, minPriceWad, maxPriceWad);
        _checkFeed(c);
        if (_feeds[asset].feed == address(0)) return _applyFeed(asset, c);
        uint256 readyAt = block.timestamp + ConstantsLib.FEED_TIMELOCK;
        _pendingFeeds[asset] = PendingFeed(c, readyAt);
        emit FeedProposed(asset, feed, readyAt);
    }

    /// @notice Apply a proposed replacement feed once its timelock has passed (checked again now).
    function applyFeed(address asset) external {
        PendingFeed memory q = _pendingFeeds[asset];
        if (q.readyAt == 0 || block.timestamp < q.readyAt) revert ErrorsLib.TimelockNotReady(q.readyAt, block.timestamp);
        _checkFeed(q.config);
        delete _pendingFeeds[asset];
        _applyFeed(asset, q.config);
    }

    function _applyFeed(address asset, FeedConfig memory c) internal {
        _feeds[asset] = c;
        delete _volCache[asset];
        emit FeedSet(asset, c.feed, c.heartbeat, c.decimals, c.volWindowRounds, c.minPriceWad, c.maxPriceWad);
    }

    /// @dev The feed answers with the expected decimals and a price that passes every read check now.
    function _checkFeed(FeedConfig memory c) internal view {
        if (c.decimals > ConstantsLib.MAX_FEED_DECIMALS) {
            revert ErrorsLib.ParamOutOfBounds("feedDecimals", c.decimals, 0, ConstantsLib.MAX_FEED_DECIMALS);
        }
        if (c.feed.code.length == 0) revert ErrorsLib.FeedCheckFailed(c.feed, "no code");
        if (AggregatorV3Interface(c.feed).decimals() != c.decimals) revert ErrorsLib.FeedCheckFailed(c.feed, "decimals");
        (,,,, bytes32 fault) = _evaluate(c);
        if (fault != 0) revert ErrorsLib.FeedCheckFailed(c.feed, fault);
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
    function priceWadOrZero(address asset) external view returns (uint256 price) {
        FeedConfig memory c = _feeds[asset];
        if (c.feed == address(0)) return 0;
        bytes32 fault;
        (,,, price, fault) = _evaluate(c);
        if (fault != 0) return 0;
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
        bytes32 fault;
        (roundId, answer, updatedAt, price, fault) = _evaluate(c);
        if (fault == "sign") revert ErrorsLib.NonPositivePrice(asset, answer);
        if (fault == "stale") revert ErrorsLib.StalePrice(asset, updatedAt, block.timestamp);
        if (fault == "bounds") revert ErrorsLib.PriceOutOfBounds(asset, price, c.minPriceWad, c.maxPriceWad);
        if (fault != 0) _latestRound(c); // unreadable: the feed's own revert
    }

    /// @dev The latest round and its normalised price, with what is wrong with it (0 when nothing is):
    /// "unreadable" (the feed reverts), "sign" (not positive), "stale" (older than the heartbeat), "bounds"
    /// (outside the configured range).
    function _evaluate(FeedConfig memory c)
        internal
        view
        returns (uint80 roundId, int256 answer, uint256 updatedAt, uint256 price, bytes32 fault)
    {
        try AggregatorV3Interface(c.feed).latestRoundData() returns (uint80 r, int256 a, uint256, uint256 t, uint80) {
            (roundId, answer, updatedAt) = (r, a, t);
        } catch {
            return (0, 0, 0, 0, "unreadable");
        }
        if (answer <= 0) return (roundId, answer, updatedAt, 0, "sign");
        if (updatedAt == 0 || (block.timestamp > updatedAt && block.timestamp - updatedAt > c.heartbeat)) {
            fault = "stale";
        }
        price = uint256(answer) * 10 ** (ConstantsLib.USD_DECIMALS - c.decimals);
        if (fault == 0 && (price < c.minPriceWad || price > c.maxPriceWad)) fault = "bounds";
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
