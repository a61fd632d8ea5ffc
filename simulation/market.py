"""Price paths for the agent simulation, one price per asset per block.

The process is a log-price geometric Brownian motion per asset with correlated Gaussian increments,
volatility regimes and optional Merton (compound-Poisson) jumps. Crash events force a path: a
Brownian bridge pins the log-price to `start * (1 - drop)` at the end of the window, with the
process's own noise in between, and optionally a second bridge back to the pre-crash level. A CSV
file can replace the process (events still apply on top of the replayed path).

    paths = price_path(cfg, seed=7, blocks=1_000, block_time_s=12)   # {"ETH": array(1001), ...}

Determinism: all randomness comes from `np.random.default_rng(seed)`, split with `spawn` into one
stream per kind of draw (diffusion, jump counts, jump sizes), each drawn as a (steps, assets)
array in one call. So a longer run reproduces a shorter one exactly as its prefix.
"""

from __future__ import annotations

import csv as csvlib
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from simulation.depth import DepthConfig

FloatArray = npt.NDArray[np.float64]

SECONDS_PER_YEAR = 365 * 24 * 3600
SECONDS_PER_DAY = 24 * 3600
MAX_VOL_ANNUAL = 100.0
"""Sane bounds of the process's inputs (beyond them no price path stays within an oracle's bounds):
annualised volatility and |drift| up to 10,000 %, log jumps up to 10 (x22,000), a jump every 9 s."""
MAX_DRIFT_ANNUAL = 100.0
MAX_LOG_JUMP = 10.0
MAX_JUMPS_PER_DAY = 10_000.0
MAX_VOL_MULTIPLIER = 1_000.0
INDEX_COLUMNS = ("block", "timestamp")
"""A replay CSV needs one of these (the first present wins); row i is block i."""


class _Model(BaseModel):
    # inf and NaN are refused in every float field (in dicts too), with the field's path
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)


class JumpConfig(_Model):
    """Merton jumps, independent per asset: log-price jumps by N(mean, std) at Poisson times."""

    per_day: float = Field(ge=0, le=MAX_JUMPS_PER_DAY, allow_inf_nan=False)
    """Poisson intensity: expected number of jumps per asset per day."""
    mean: float = Field(ge=-MAX_LOG_JUMP, le=MAX_LOG_JUMP, allow_inf_nan=False)
    """Mean of the log jump size (-0.05 is a jump of about -4.9 %). Not drift-compensated."""
    std: float = Field(ge=0, le=MAX_LOG_JUMP, allow_inf_nan=False)
    """Standard deviation of the log jump size."""


class RegimeConfig(_Model):
    """A volatility regime: from `from_block` on, every asset's volatility is multiplied."""

    from_block: int = Field(ge=0)
    """First block whose step (block -> block + 1) uses this multiplier."""
    vol_multiplier: float = Field(gt=0, le=MAX_VOL_MULTIPLIER, allow_inf_nan=False)
    """Factor on `vol_annual` while this regime is in force (until the next regime starts)."""


class PathEvent(_Model):
    """A forced crash (a Brownian bridge down), optionally followed by a recovery bridge back."""

    kind: Literal["crash"]
    """The event type; only `crash` so far (a flash crash when `recover_blocks` > 0)."""
    assets: list[str] = Field(min_length=1)
    """Assets that crash (each must be a key of `start`)."""
    start_block: int = Field(ge=0)
    """Block the crash starts from; its price is the pre-crash level."""
    duration_blocks: int = Field(gt=0)
    """Window length: at `start_block + duration_blocks` the price is pre-crash * (1 - drop)."""
    drop: float = Field(gt=0, lt=1)
    """Relative drop over the window, in (0, 1): 0.35 is -35 %."""
    recover_blocks: int = Field(default=0, ge=0)
    """If > 0, a second bridge returns to the pre-crash level exactly this many blocks later."""

    @field_validator("assets")
    @classmethod
    def _unique_assets(cls, assets: list[str]) -> list[str]:
        duplicates = sorted({a for a in assets if assets.count(a) > 1})
        if duplicates:
            raise ValueError(f"assets listed twice: {', '.join(duplicates)}")
        return assets

    @property
    def end_block(self) -> int:
        """Last block the event shapes (end of the recovery if any, else end of the crash)."""
        return self.start_block + self.duration_blocks + self.recover_blocks


class MarketConfig(_Model):
    """The price process of a scenario: GBM per asset, or a CSV replay, plus forced events."""

    start: dict[str, float] = Field(min_length=1)
    """Starting USD price per asset, e.g. {"ETH": 3000, "BTC": 60000}; each > 0."""
    csv: Path | None = None
    """Replay file: a `block` (or `timestamp`) column and one column per asset; row i is block i.
    Replaces the GBM process (vol, drift, correlation, jumps, regimes are then ignored)."""
    vol_annual: dict[str, float] = Field(default_factory=dict, validate_default=True)
    """Annualised volatility per asset, >= 0 (0.6 = 60 %); required for every asset unless `csv`."""
    drift_annual: dict[str, float] = Field(default_factory=dict)
    """Annualised drift per asset (GBM mu: the log drift is mu - vol^2/2); default 0."""
    correlation: float = Field(default=0.0, ge=-1, le=1)
    """Correlation of every pair of assets' Brownian increments, in [-1, 1] (>= -1/(n-1))."""
    jumps: JumpConfig | None = None
    """Merton jumps added to every asset independently; none if unset."""
    regimes: list[RegimeConfig] = Field(default_factory=list)
    """Volatility regime changes, each in force from its `from_block` until the next one."""
    events: list[PathEvent] = Field(default_factory=list)
    """Forced paths (crashes); windows of events on the same asset must not overlap."""
    depth: DepthConfig | None = None
    """Outside-market depth: liquidations (and optionally traders) move the price, which recovers
    (simulation.depth). None: the path is exogenous, as computed before the run."""

    @field_validator("start")
    @classmethod
    def _positive_start(cls, start: dict[str, float]) -> dict[str, float]:
        bad = [f"{a}={p}" for a, p in start.items() if not (math.isfinite(p) and p > 0)]
        if bad:
            raise ValueError(f"prices must be finite and > 0: {', '.join(bad)}")
        return start

    @field_validator("vol_annual")
    @classmethod
    def _check_vol(cls, vol: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        _known_assets(vol, info)
        start = info.data.get("start")
        if start is not None and "csv" in info.data and info.data["csv"] is None:
            missing = [a for a in start if a not in vol]
            if missing:
                raise ValueError(f"no volatility for {', '.join(missing)} (and no csv replay)")
        bad = [f"{a}={v}" for a, v in vol.items() if not 0 <= v <= MAX_VOL_ANNUAL]
        if bad:
            raise ValueError(
                f"volatilities must be finite and >= 0, at most {MAX_VOL_ANNUAL:g}: {', '.join(bad)}"
            )
        return vol

    @field_validator("drift_annual")
    @classmethod
    def _check_drift(cls, drift: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        _known_assets(drift, info)
        bad = [f"{a}={v}" for a, v in drift.items() if not abs(v) <= MAX_DRIFT_ANNUAL]
        if bad:
            raise ValueError(
                f"drifts must be finite, at most {MAX_DRIFT_ANNUAL:g} in size: {', '.join(bad)}"
            )
        return drift

    @field_validator("correlation")
    @classmethod
    def _check_correlation(cls, rho: float, info: ValidationInfo) -> float:
        n = len(info.data.get("start", {}))
        if n > 2 and rho < -1 / (n - 1):
            raise ValueError(
                f"{rho} is below -1/(n-1) = {-1 / (n - 1):.6g} for {n} assets: "
                "the equicorrelation matrix would not be positive semi-definite"
            )
        return rho

    @field_validator("regimes")
    @classmethod
    def _check_regimes(cls, regimes: list[RegimeConfig]) -> list[RegimeConfig]:
        starts = [r.from_block for r in regimes]
        duplicates = sorted({b for b in starts if starts.count(b) > 1})
        if duplicates:
            raise ValueError(f"two regimes start at the same block: {duplicates}")
        return sorted(regimes, key=lambda r: r.from_block)

    @field_validator("events")
    @classmethod
    def _check_events(cls, events: list[PathEvent], info: ValidationInfo) -> list[PathEvent]:
        start = info.data.get("start")
        if start is not None:
            for i, event in enumerate(events):
                unknown = [a for a in event.assets if a not in start]
                if unknown:
                    raise ValueError(
                        f"events[{i}].assets: {', '.join(map(repr, unknown))} not in start "
                        f"({', '.join(start)})"
                    )
        _no_overlaps(events)
        return events

    @field_validator("depth")
    @classmethod
    def _check_depth(cls, depth: DepthConfig | None, info: ValidationInfo) -> DepthConfig | None:
        if depth is not None:
            _known_assets(depth.depth_usd, info)
        return depth


def _known_assets(per_asset: dict[str, float], info: ValidationInfo) -> None:
    start = info.data.get("start")
    if start is None:
        return
    unknown = [a for a in per_asset if a not in start]
    if unknown:
        raise ValueError(f"{', '.join(map(repr, unknown))} not in start ({', '.join(start)})")


def _no_overlaps(events: list[PathEvent]) -> None:
    """Events on one asset must not overlap (touching ends are fine): bridges would fight."""
    by_asset: dict[str, list[tuple[int, int, int]]] = {}
    for i, event in enumerate(events):
        for asset in event.assets:
            by_asset.setdefault(asset, []).append((event.start_block, event.end_block, i))
    for asset, windows in by_asset.items():
        windows.sort()
        for (_, end_a, i), (start_b, _, j) in itertools.pairwise(windows):
            if start_b < end_a:
                raise ValueError(
                    f"events[{i}] and events[{j}] overlap on {asset} "
                    f"(blocks {start_b}..{end_a}); one event per asset at a time"
                )


def price_path(
    cfg: MarketConfig, seed: int, blocks: int, block_time_s: float
) -> dict[str, np.ndarray]:
    """Prices for blocks 0..blocks (inclusive: blocks+1 values per asset).

    Deterministic in (cfg, seed, blocks, block_time_s), bit for bit; a longer run repeats a
    shorter one as its prefix. Keys are the assets of `cfg.start`, in its order; values are
    float64 arrays.
    """
    if blocks < 0:
        raise ValueError(f"blocks must be >= 0, got {blocks}")
    if not (math.isfinite(block_time_s) and block_time_s > 0):
        raise ValueError(f"block_time_s must be finite and > 0, got {block_time_s}")
    assets = list(cfg.start)
    events = [e for e in cfg.events if e.start_block < blocks]  # later ones cannot show
    horizon = max([blocks, *(e.end_block for e in events)])
    if cfg.csv is not None:
        prices = _read_csv(cfg.csv, assets, horizon + 1)
    else:
        prices = _gbm_prices(cfg, assets, seed, horizon, block_time_s)
    if events:
        prices = _with_events(prices, assets, events)
    prices = prices[: blocks + 1]
    return {asset: np.ascontiguousarray(prices[:, i]) for i, asset in enumerate(assets)}


def _gbm_prices(
    cfg: MarketConfig, assets: list[str], seed: int, steps: int, block_time_s: float
) -> FloatArray:
    """Prices, shape (steps + 1, assets): GBM with regimes and jumps; row 0 is `start` exactly."""
    dt = block_time_s / SECONDS_PER_YEAR
    diffusion_rng, count_rng, size_rng = np.random.default_rng(seed).spawn(3)
    vol = np.array([cfg.vol_annual.get(a, 0.0) for a in assets])
    drift = np.array([cfg.drift_annual.get(a, 0.0) for a in assets])
    sigma = _regime_multipliers(cfg.regimes, steps)[:, None] * vol[None, :]  # (steps, assets)
    shocks = (
        diffusion_rng.standard_normal((steps, len(assets)))
        @ _correlation_factor(cfg.correlation, len(assets)).T
    )
    increments = (drift - 0.5 * sigma**2) * dt + sigma * math.sqrt(dt) * shocks
    if cfg.jumps is not None:
        increments += _jump_increments(
            cfg.jumps, count_rng, size_rng, steps, len(assets), block_time_s
        )
    log_growth = np.zeros((steps + 1, len(assets)))
    np.cumsum(increments, axis=0, out=log_growth[1:])
    prices: FloatArray = np.array([cfg.start[a] for a in assets]) * np.exp(log_growth)
    return prices


def _regime_multipliers(regimes: list[RegimeConfig], steps: int) -> FloatArray:
    """Volatility multiplier of each step b -> b + 1: the last regime with from_block <= b."""
    multipliers = np.ones(steps)
    for regime in sorted(regimes, key=lambda r: r.from_block):
        multipliers[regime.from_block :] = regime.vol_multiplier
    return multipliers


def _correlation_factor(rho: float, n: int) -> FloatArray:
    """L with L @ L.T = the equicorrelation matrix (Cholesky; eigen-root if it is singular)."""
    matrix = np.full((n, n), rho)
    np.fill_diagonal(matrix, 1.0)
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:  # rho = 1 or rho = -1/(n-1): semi-definite only
        values, vectors = np.linalg.eigh(matrix)
        factor: FloatArray = vectors * np.sqrt(np.clip(values, 0.0, None))
        return factor


def _jump_increments(
    jumps: JumpConfig,
    count_rng: np.random.Generator,
    size_rng: np.random.Generator,
    steps: int,
    n_assets: int,
    block_time_s: float,
) -> FloatArray:
    """Compound-Poisson log jumps per step and asset: the sum of N ~ Poisson jumps N(mean, std)."""
    counts = count_rng.poisson(jumps.per_day * block_time_s / SECONDS_PER_DAY, (steps, n_assets))
    noise = size_rng.standard_normal((steps, n_assets))
    sizes: FloatArray = counts * jumps.mean + np.sqrt(counts) * jumps.std * noise
    return sizes


def _with_events(prices: FloatArray, assets: list[str], events: list[PathEvent]) -> FloatArray:
    """Prices with the events bridged in (in log space); untouched values stay bit-identical."""
    log_base = np.log(prices)
    log_path = log_base.copy()
    for event in sorted(events, key=lambda e: e.start_block):
        for asset in event.assets:
            column = assets.index(asset)
            log_path[:, column] = _apply_event(log_path[:, column], event)
    shifted: FloatArray = prices * np.exp(log_path - log_base)
    return shifted


def _apply_event(log_path: FloatArray, event: PathEvent) -> FloatArray:
    """One asset's log-path with the crash (and recovery) bridged in; the rest shifted along."""
    s, e = event.start_block, event.start_block + event.duration_blocks
    pre_crash = log_path[s]
    path = _bridge(log_path, s, e, pre_crash + math.log1p(-event.drop))
    if event.recover_blocks > 0:
        path = _bridge(path, e, e + event.recover_blocks, pre_crash)
    return path


def _bridge(log_path: FloatArray, s: int, e: int, target: float) -> FloatArray:
    """Brownian bridge from log_path[s] to `target` at e, keeping the path's own noise.

    Inside the window the gap log_path[e] - target is removed linearly in time, so both ends are
    pinned; after it the path goes on with its own increments from `target`.
    """
    path = log_path.copy()
    gap = path[e] - target
    path[s : e + 1] -= gap * np.arange(e - s + 1) / (e - s)
    path[e] = target  # exact, not target up to rounding
    path[e + 1 :] -= gap
    return path


def _read_csv(path: Path, assets: list[str], rows_needed: int) -> FloatArray:
    """The first `rows_needed` rows of a replay CSV, shape (rows, assets), validated."""
    try:
        with path.open(newline="") as handle:
            return _parse_csv(path, csvlib.DictReader(handle), assets, rows_needed)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read price CSV ({exc.strerror or exc})") from exc


def _parse_csv(
    path: Path, reader: csvlib.DictReader[str], assets: list[str], rows_needed: int
) -> FloatArray:
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    index = next((c for c in INDEX_COLUMNS if c in header), None)
    if index is None:
        raise ValueError(f"{path}: no `block` or `timestamp` column (header: {header})")
    for asset in assets:
        if asset not in header:
            raise ValueError(f"{path}: column {asset!r} missing (header: {header})")
    prices = np.empty((rows_needed, len(assets)))
    previous: float | None = None
    count = 0
    for count, (line, row) in enumerate(_numbered_rows(reader, rows_needed), start=1):
        here = _cell(path, line, index, row.get(index))
        _check_index(path, line, index, here, previous)
        previous = here
        for i, asset in enumerate(assets):
            price = _cell(path, line, asset, row.get(asset))
            if price <= 0:
                raise ValueError(f"{path}, line {line}, column {asset!r}: price {price} is not > 0")
            prices[count - 1, i] = price
    if count < rows_needed:
        raise ValueError(
            f"{path}: {count} data rows, but blocks 0..{rows_needed - 1} need {rows_needed} "
            "(rows are never repeated or extrapolated)"
        )
    return prices


def _numbered_rows(
    reader: csvlib.DictReader[str], limit: int
) -> Iterator[tuple[int, dict[str, str | None]]]:
    """(file line number, row) for at most `limit` data rows."""
    for i, row in enumerate(reader):
        if i >= limit:
            return
        yield reader.line_num, row


def _cell(path: Path, line: int, column: str, raw: str | None) -> float:
    if raw is None or not raw.strip():
        raise ValueError(f"{path}, line {line}, column {column!r}: missing value")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"{path}, line {line}, column {column!r}: {raw!r} is not a number"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"{path}, line {line}, column {column!r}: {raw!r} is not finite")
    return value


def _check_index(path: Path, line: int, column: str, value: float, previous: float | None) -> None:
    """`block` goes up by exactly 1 per row; `timestamp` strictly increases."""
    if previous is None:
        return
    if column == "block" and value != previous + 1:
        raise ValueError(
            f"{path}, line {line}, column 'block': {value:g} after {previous:g} "
            "(one row per block, consecutive)"
        )
    if column == "timestamp" and value <= previous:
        raise ValueError(
            f"{path}, line {line}, column 'timestamp': {value:g} is not after {previous:g}"
        )
