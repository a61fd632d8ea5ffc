// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IOracleAdapter
/// @notice Chainlink AggregatorV3 feeds behind one checked, normalised read per asset.
/// @dev Prices are USD per one whole unit of the asset, 18 decimals ("wad"), whatever the feed's decimals.
interface IOracleAdapter {
    /// @notice Feed settings of one asset.
    /// @param feed Chainlink AggregatorV3Interface (a proxy on mainnet, a mock locally).
    /// @param heartbeat seconds after `updatedAt` beyond which the price is stale.
    /// @param decimals the feed's own decimals, read from it when set.
    /// @param volWindowRounds how many past rounds the realised volatility looks at.
    /// @param minPriceWad lowest accepted price, wad.
    /// @param maxPriceWad highest accepted price, wad.
    struct FeedConfig {
        address feed;
        uint32 heartbeat;
        uint8 decimals;
        uint16 volWindowRounds;
        uint256 minPriceWad;
        uint256 maxPriceWad;
    }

    /// @notice Emitted when an asset's feed is set or changed.
    event FeedSet(
        address indexed asset, address feed, uint32 heartbeat, uint8 decimals, uint16 volWindowRounds, uint256 minPriceWad, uint256 maxPriceWad
    );

    function feedConfig(address asset) external view returns (FeedConfig memory);

    /// @notice Latest price, checked for staleness, sign and bounds; reverts with a named error otherwise.
    function priceWad(address asset) external view returns (uint256);

    /// @notice `priceWad`, or 0 where it would revert (no feed, stale, non-positive, out of bounds): for
    /// decisions that must go on without the price, valuing what it prices at nothing.
    function priceWadOrZero(address asset) external view returns (uint256);

    /// @notice Realised volatility per hour, wad (0.01e18 = 1 %/h), from the feed's last rounds:
    /// `sqrt( sum_i ((p_i - p_{i-1}) / p_{i-1})^2 * 3600 / (t_last - t_first) )` over up to
    /// `volWindowRounds` returns ending at the latest round. Time-normalised, so a feed that updates
    /// often on deviation (a volatile market) measures higher than one updating on heartbeat. A pure
    /// function of the rounds (cacheable per round); a feed with fewer than two rounds has volatility 0.
    function hourlyVolatilityWad(address asset) external view returns (uint256);

    /// @notice `priceWad` and `hourlyVolatilityWad` from one read of the latest round.
    function priceAndVolatility(address asset) external view returns (uint256 priceWad, uint256 hourlyVolWad);
}
