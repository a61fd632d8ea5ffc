// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ConstantsLib
/// @notice Units and the hard bounds the owner can never set a parameter outside of.
/// @dev Ratios, prices and USD values are 18-decimal fixed point ("wad"): 0.05e18 is 5 %.
library ConstantsLib {
    uint256 internal constant WAD = 1e18;
    /// @dev Decimals of every USD value and normalised price.
    uint8 internal constant USD_DECIMALS = 18;
    uint256 internal constant SECONDS_PER_HOUR = 3600;

    // --- market parameter bounds -------------------------------------------------------------
    uint256 internal constant MIN_MAINTENANCE_MARGIN = 0.005e18; // 0.5 %
    uint256 internal constant MAX_MAINTENANCE_MARGIN = 0.5e18; // 50 %
    uint256 internal constant MAX_INITIAL_MARGIN = 1e18; // 100 % (1x)
    uint256 internal constant MIN_MAX_LEVERAGE = 1e18; // 1x
    uint256 internal constant MAX_MAX_LEVERAGE = 100e18; // 100x
    uint256 internal constant MAX_LIQUIDATION_PENALTY = 0.2e18; // and always < maintenance margin
    uint256 internal constant MAX_KEEPER_SHARE = 1e18; // the whole penalty
    uint256 internal constant MAX_SPREAD = 0.01e18; // 1 % of price
    uint256 internal constant MAX_IMPACT_COEFFICIENT = 1e18; // impact = coeff * notional / pool value
    uint256 internal constant MAX_IMPACT_FRACTION = 0.05e18; // impact never exceeds 5 % of price
    uint256 internal constant MAX_OI_CAP = 2e18; // open interest <= 2x the pool's value
    uint256 internal constant MAX_MIN_NOTIONAL_USD = 1_000_000e18;
    uint256 internal constant MAX_VOL_FLOOR = 1e18; // hourly volatility, 100 %
    uint256 internal constant MAX_VOL_SLOPE = 10e18;
    uint256 internal constant MAX_MAINTENANCE_BUFFER = 0.25e18; // added to the ratios, 25 %
    uint256 internal constant MAX_MIN_FEE = 0.02e18; // per-side fee floor, 2 % of price
    uint256 internal constant MAX_LIQUIDATION_CAP_USD = 1_000_000_000_000e18; // per market and block; 0 is no cap
    uint256 internal constant MAX_TIER_NOTIONAL_USD = 1_000_000_000_000e18;
    /// @dev With the maintenance ratio and buffer at their bounds, maintenance + tier stays under 100 %: health
    /// then falls monotonically as the price moves against a position (the exact liquidation price exists).
    uint256 internal constant MAX_TIER_MARGIN = 0.2e18;
    /// @dev Funding per day at full skew: 100 % of price (Hyperliquid caps its rate at 4 % an hour).
    uint256 internal constant MAX_FUNDING_RATE = 1e18;
    /// @dev Portfolio margin's correlation between any two markets, with its haircut taken: ETH and BTC's
    /// hourly returns correlate about 0.85; at 0.7 a long and a short of equal requirements need sqrt(0.6),
    /// 39 %, of their sum.
    uint256 internal constant PORTFOLIO_CORRELATION = 0.7e18;
    /// @dev The pool's daily loss cap per market, a fraction of its trading liquidity (0 is no cap).
    uint256 internal constant MAX_POOL_LOSS_CAP = 1e18;

    // --- owner powers --------------------------------------------------------------------------
    /// @dev A risk-parameter change waits this long between being queued and taking effect, so that
    /// traders and LPs see it coming and can leave.
    uint256 internal constant PARAMS_TIMELOCK = 1 days;
    /// @dev One change moves each parameter by at most half its current value, or by this much (in its
    /// own unit) when half is smaller: 1 percentage point for ratios.
    uint256 internal constant MIN_PARAM_STEP = 0.01e18;

    // --- collateral bounds ---------------------------------------------------------------------
    uint256 internal constant MAX_COLLATERAL_WEIGHT = 0.95e18;

    // --- liquidation -------------------------------------------------------------------------
    /// @dev A partial liquidation closes just enough that equity >= 1.25 x maintenance afterwards.
    uint256 internal constant LIQUIDATION_TARGET_HEALTH = 1.25e18;

    // --- oracle ------------------------------------------------------------------------------
    uint8 internal constant MAX_FEED_DECIMALS = 18;
    /// @dev A feed replacing another takes effect this long after it is proposed.
    uint256 internal constant FEED_TIMELOCK = 1 days;
    uint256 internal constant MAX_VOL_WINDOW_ROUNDS = 32;
}
