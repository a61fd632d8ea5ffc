"""The simulation's price process: GBM statistics, regimes, jumps, crash bridges, CSV replay and
config validation. Pure numpy, no chain."""

import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from simulation.market import MarketConfig, price_path

BLOCK_S = 12.0
DT = BLOCK_S / (365 * 24 * 3600)
LONG = 200_000  # blocks: ~28 days at 12 s


def _cfg(**overrides) -> MarketConfig:
    base: dict = {
        "start": {"ETH": 3000.0, "BTC": 60000.0},
        "vol_annual": {"ETH": 0.6, "BTC": 0.5},
    }
    base.update(overrides)
    return MarketConfig.model_validate(base)


def _realised_vol(prices: np.ndarray) -> float:
    return float(np.std(np.diff(np.log(prices)), ddof=1) / math.sqrt(DT))


def _write(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- determinism and shape -----------------------------------------------------------------------


def test_same_seed_is_bit_identical_and_different_seed_differs():
    cfg = _cfg(correlation=0.5, jumps={"per_day": 3, "mean": -0.02, "std": 0.01})
    a = price_path(cfg, seed=11, blocks=5_000, block_time_s=BLOCK_S)
    b = price_path(cfg, seed=11, blocks=5_000, block_time_s=BLOCK_S)
    c = price_path(cfg, seed=12, blocks=5_000, block_time_s=BLOCK_S)
    assert list(a) == ["ETH", "BTC"]
    for asset in a:
        assert a[asset].shape == (5_001,) and a[asset].dtype == np.float64
        assert a[asset][0] == cfg.start[asset]
        assert a[asset].tobytes() == b[asset].tobytes()
        assert not np.array_equal(a[asset], c[asset])


def test_longer_run_repeats_shorter_as_prefix():
    event = {
        "kind": "crash",
        "assets": ["ETH"],
        "start_block": 900,
        "duration_blocks": 300,
        "drop": 0.3,
        "recover_blocks": 200,
    }
    cfg = _cfg(jumps={"per_day": 5, "mean": -0.03, "std": 0.01}, events=[event])
    short = price_path(cfg, seed=3, blocks=1_000, block_time_s=BLOCK_S)  # event cut off
    long = price_path(cfg, seed=3, blocks=3_000, block_time_s=BLOCK_S)
    for asset in short:
        assert np.array_equal(short[asset], long[asset][:1_001])


def test_zero_vol_is_pure_drift_with_per_block_dt():
    cfg = _cfg(vol_annual={"ETH": 0.0, "BTC": 0.0}, drift_annual={"ETH": 0.5})
    p = price_path(cfg, seed=1, blocks=1_000, block_time_s=BLOCK_S)
    blocks = np.arange(1_001)
    np.testing.assert_allclose(p["ETH"], 3000.0 * np.exp(0.5 * DT * blocks), rtol=1e-12)
    np.testing.assert_array_equal(p["BTC"], np.full(1_001, 60000.0))


# --- GBM statistics ------------------------------------------------------------------------------


def test_realised_vol_and_correlation_match_config():
    cfg = _cfg(correlation=0.7)
    p = price_path(cfg, seed=2024, blocks=LONG, block_time_s=BLOCK_S)
    for asset, vol in cfg.vol_annual.items():
        assert abs(_realised_vol(p[asset]) / vol - 1) < 0.03, asset
    returns = [np.diff(np.log(p[a])) for a in ("ETH", "BTC")]
    assert abs(np.corrcoef(*returns)[0, 1] - 0.7) < 0.02


@pytest.mark.parametrize("rho", [-0.4, 0.0, 1.0])
def test_correlation_over_its_range(rho):
    cfg = _cfg(correlation=rho)
    p = price_path(cfg, seed=5, blocks=50_000, block_time_s=BLOCK_S)
    corr = np.corrcoef(np.diff(np.log(p["ETH"])), np.diff(np.log(p["BTC"])))[0, 1]
    assert abs(corr - rho) < 0.02


def test_three_assets_share_the_pairwise_correlation():
    cfg = MarketConfig(
        start={"ETH": 3000, "BTC": 60000, "SOL": 150},
        vol_annual={"ETH": 0.6, "BTC": 0.5, "SOL": 0.9},
        correlation=0.3,
    )
    p = price_path(cfg, seed=8, blocks=LONG, block_time_s=BLOCK_S)
    corr = np.corrcoef([np.diff(np.log(p[a])) for a in ("ETH", "BTC", "SOL")])
    assert np.all(np.abs(corr[np.triu_indices(3, k=1)] - 0.3) < 0.02)


def test_drift_shows_in_mean_log_return():
    # Huge drift so that the mean is measurable over the long path: E[dlog] = (mu - vol^2/2) dt.
    cfg = _cfg(vol_annual={"ETH": 0.2, "BTC": 0.2}, drift_annual={"ETH": 40.0, "BTC": -40.0})
    p = price_path(cfg, seed=9, blocks=LONG, block_time_s=BLOCK_S)
    for asset, mu in cfg.drift_annual.items():
        mean = np.mean(np.diff(np.log(p[asset]))) / DT
        assert abs(mean - (mu - 0.02)) < 0.1 * abs(mu), asset


def test_log_drift_has_ito_correction():
    # Daily steps for ~550 years: the mean annual log return is mu - vol^2/2 = 0.1 - 0.5, with a
    # standard error of vol / sqrt(years) ~ 0.043; without the correction it would be +0.1.
    cfg = _cfg(vol_annual={"ETH": 1.0, "BTC": 1.0}, drift_annual={"ETH": 0.1, "BTC": 0.1})
    p = price_path(cfg, seed=10, blocks=LONG, block_time_s=86_400)
    years = LONG / 365
    for asset in p:
        annual = math.log(p[asset][-1] / p[asset][0]) / years
        assert abs(annual - (0.1 - 0.5)) < 0.2, asset


def test_regime_multiplier_shows_in_later_segment():
    half = LONG // 2
    cfg = _cfg(regimes=[{"from_block": half, "vol_multiplier": 2.5}])
    p = price_path(cfg, seed=77, blocks=LONG, block_time_s=BLOCK_S)
    for asset in p:
        early = _realised_vol(p[asset][: half + 1])
        late = _realised_vol(p[asset][half:])
        assert abs(late / early / 2.5 - 1) < 0.05, asset


def test_regimes_apply_in_block_order_whatever_the_list_order():
    listed = [
        {"from_block": 2_000, "vol_multiplier": 3.0},
        {"from_block": 1_000, "vol_multiplier": 0.5},
    ]
    shuffled = price_path(_cfg(regimes=listed), seed=4, blocks=3_000, block_time_s=BLOCK_S)
    ordered = price_path(_cfg(regimes=listed[::-1]), seed=4, blocks=3_000, block_time_s=BLOCK_S)
    assert np.array_equal(shuffled["ETH"], ordered["ETH"])
    vols = [_realised_vol(shuffled["ETH"][a : a + 1_001]) for a in (0, 1_000, 2_000)]
    assert vols[1] < 0.7 * 0.6 < vols[0] < 1.5 * 0.6 < vols[2]


# --- jumps ---------------------------------------------------------------------------------------


def test_jump_count_matches_intensity():
    per_day = 5.0
    cfg = _cfg(jumps={"per_day": per_day, "mean": -0.08, "std": 0.01})
    p = price_path(cfg, seed=31, blocks=LONG, block_time_s=BLOCK_S)
    expected = per_day * LONG * BLOCK_S / 86_400  # ~139 per asset
    for asset in p:
        moves = np.diff(np.log(p[asset]))
        big = moves[np.abs(moves) > 0.02]  # > 50 diffusion sigmas per block
        assert abs(len(big) - expected) < 5 * math.sqrt(expected), asset
        assert abs(np.mean(big) + 0.08) < 0.005, asset


def test_no_jumps_no_large_moves():
    p = price_path(_cfg(), seed=31, blocks=LONG, block_time_s=BLOCK_S)
    for asset in p:
        assert np.max(np.abs(np.diff(np.log(p[asset])))) < 0.02


# --- crash events --------------------------------------------------------------------------------


def _crash(**overrides) -> dict:
    event = {
        "kind": "crash",
        "assets": ["ETH"],
        "start_block": 1_000,
        "duration_blocks": 2_000,
        "drop": 0.35,
    }
    event.update(overrides)
    return event


def test_crash_pins_the_end_keeps_noise_and_continues():
    plain = price_path(_cfg(), seed=21, blocks=6_000, block_time_s=BLOCK_S)
    crashed = price_path(_cfg(events=[_crash()]), seed=21, blocks=6_000, block_time_s=BLOCK_S)
    eth, s, e = crashed["ETH"], 1_000, 3_000
    assert abs(eth[e] / (eth[s] * 0.65) - 1) < 1e-9
    # Before the window nothing changes; BTC is untouched.
    assert np.array_equal(eth[: s + 1], plain["ETH"][: s + 1])
    assert np.array_equal(crashed["BTC"], plain["BTC"])
    # Inside: not the straight (log-linear) line, and the per-block noise is the process's own.
    log_window = np.log(eth[s : e + 1])
    line = np.linspace(log_window[0], log_window[-1], e - s + 1)
    assert np.max(np.abs(log_window - line)) > 0.005
    per_block_sigma = 0.6 * math.sqrt(DT)
    assert abs(np.std(np.diff(log_window)) / per_block_sigma - 1) < 0.1
    # After: the process goes on with its own increments from the pinned level.
    np.testing.assert_allclose(
        np.diff(np.log(eth[e:])), np.diff(np.log(plain["ETH"][e:])), rtol=0, atol=1e-12
    )
    assert np.std(np.diff(np.log(eth[e:]))) > 0.5 * per_block_sigma


def test_flash_crash_recovers_to_pre_crash_level():
    event = _crash(assets=["ETH", "BTC"], duration_blocks=50, drop=0.5, recover_blocks=500)
    p = price_path(_cfg(events=[event]), seed=22, blocks=2_000, block_time_s=BLOCK_S)
    for asset in p:
        pre = p[asset][1_000]
        assert abs(p[asset][1_050] / (pre * 0.5) - 1) < 1e-9
        assert abs(p[asset][1_550] / pre - 1) < 1e-9
        recovery = np.log(p[asset][1_050:1_551])
        line = np.linspace(recovery[0], recovery[-1], 501)
        assert np.max(np.abs(recovery - line)) > 1e-3
        assert np.min(p[asset][1_000:1_551]) < 0.6 * pre


def test_crash_with_zero_vol_is_a_straight_log_line():
    cfg = _cfg(vol_annual={"ETH": 0.0, "BTC": 0.0}, events=[_crash(duration_blocks=10)])
    eth = price_path(cfg, seed=1, blocks=1_020, block_time_s=BLOCK_S)["ETH"]
    np.testing.assert_allclose(
        np.log(eth[1_000:1_011]), np.linspace(math.log(3000), math.log(3000 * 0.65), 11), rtol=1e-12
    )
    assert eth[-1] == pytest.approx(3000 * 0.65, rel=1e-12)


def test_event_beyond_horizon_is_ignored():
    late = price_path(
        _cfg(events=[_crash(start_block=10_000)]), seed=5, blocks=1_000, block_time_s=BLOCK_S
    )
    plain = price_path(_cfg(), seed=5, blocks=1_000, block_time_s=BLOCK_S)
    assert np.array_equal(late["ETH"], plain["ETH"])


# --- CSV replay ----------------------------------------------------------------------------------


def test_csv_replay_returns_the_file_values(tmp_path):
    rows = "\n".join(f"{b},{3000 + b},{60000 - b},7" for b in range(6))
    path = _write(tmp_path, "block,ETH,BTC,OTHER\n" + rows + "\n")
    p = price_path(_cfg(csv=path), seed=1, blocks=4, block_time_s=BLOCK_S)
    np.testing.assert_allclose(p["ETH"], [3000, 3001, 3002, 3003, 3004], rtol=1e-14)
    np.testing.assert_allclose(p["BTC"], [60000, 59999, 59998, 59997, 59996], rtol=1e-14)
    other_seed = price_path(_cfg(csv=path), seed=2, blocks=4, block_time_s=BLOCK_S)
    assert np.array_equal(p["ETH"], other_seed["ETH"])


def test_csv_replay_with_timestamps_and_no_vol(tmp_path):
    path = _write(tmp_path, "timestamp,ETH\n1700000000,2500.5\n1700000012,2490.25\n")
    cfg = MarketConfig(start={"ETH": 1.0}, csv=path)  # vol not needed for a replay
    np.testing.assert_array_equal(price_path(cfg, 0, 1, BLOCK_S)["ETH"], [2500.5, 2490.25])


def test_csv_replay_takes_events_on_top(tmp_path):
    rows = "\n".join(f"{b},{3000 * 1.001**b},60000" for b in range(31))
    path = _write(tmp_path, "block,ETH,BTC\n" + rows + "\n")
    cfg = _cfg(csv=path, events=[_crash(start_block=10, duration_blocks=10, drop=0.2)])
    eth = price_path(cfg, seed=0, blocks=30, block_time_s=BLOCK_S)["ETH"]
    assert eth[20] == pytest.approx(3000 * 1.001**10 * 0.8, rel=1e-12)
    assert eth[30] / eth[20] == pytest.approx(1.001**10, rel=1e-12)


@pytest.mark.parametrize(
    ("text", "blocks", "expected"),
    [
        ("block,ETH\n0,3000\n1,3001\n", 1, ["column 'BTC' missing"]),
        ("block,ETH,BTC\n0,3000,60000\n1,0,60000\n", 1, ["line 3", "column 'ETH'", "not > 0"]),
        ("block,ETH,BTC\n0,3000,60000\n1,3000,-5\n", 1, ["line 3", "column 'BTC'", "not > 0"]),
        ("block,ETH,BTC\n0,3000,60000\n1,3001,60001\n", 5, ["2 data rows", "need 6"]),
        ("block,ETH,BTC\n0,3000,60000\n1,abc,60001\n", 1, ["line 3", "'abc' is not a number"]),
        ("block,ETH,BTC\n0,3000,60000\n1,,60001\n", 1, ["line 3", "column 'ETH'", "missing value"]),
        ("block,ETH,BTC\n0,3000,60000\n2,3000,60001\n", 1, ["line 3", "column 'block'"]),
        ("timestamp,ETH,BTC\n5,3000,60000\n5,3000,60001\n", 1, ["column 'timestamp'", "not after"]),
        ("time,ETH,BTC\n0,3000,60000\n", 0, ["no `block` or `timestamp` column"]),
        ("", 0, ["no `block` or `timestamp` column"]),
    ],
    ids=[
        "missing-column",
        "zero-price",
        "negative-price",
        "too-few-rows",
        "not-a-number",
        "empty-cell",
        "block-gap",
        "timestamp-repeat",
        "no-index",
        "empty-file",
    ],
)
def test_csv_errors_name_file_and_reason(tmp_path, text, blocks, expected):
    path = _write(tmp_path, text, name="replay_bad.csv")
    with pytest.raises(ValueError) as info:
        price_path(_cfg(csv=path), seed=0, blocks=blocks, block_time_s=BLOCK_S)
    message = str(info.value)
    assert "replay_bad.csv" in message
    for part in expected:
        assert part in message


def test_csv_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"nowhere\.csv: cannot read price CSV"):
        price_path(_cfg(csv=tmp_path / "nowhere.csv"), seed=0, blocks=1, block_time_s=BLOCK_S)


# --- validation ----------------------------------------------------------------------------------


def _error_for(**overrides) -> tuple[tuple, str]:
    with pytest.raises(ValidationError) as info:
        _cfg(**overrides)
    first = info.value.errors()[0]
    return tuple(first["loc"]), str(info.value)


def test_event_on_unknown_asset_names_the_field():
    loc, message = _error_for(events=[_crash(assets=["DOGE"])])
    assert loc[0] == "events"
    assert "DOGE" in message and "not in start" in message


@pytest.mark.parametrize(
    ("overrides", "field", "needle"),
    [
        ({"vol_annual": {"ETH": 0.6, "BTC": 0.5, "DOGE": 1.0}}, "vol_annual", "DOGE"),
        ({"drift_annual": {"DOGE": 0.1}}, "drift_annual", "DOGE"),
        ({"vol_annual": {"ETH": -0.1, "BTC": 0.5}}, "vol_annual", ">= 0"),
        ({"vol_annual": {"ETH": 0.6}}, "vol_annual", "no volatility for BTC"),
        ({"start": {"ETH": 0.0, "BTC": 1.0}}, "start", "> 0"),
        ({"correlation": 1.5}, "correlation", "less than or equal to 1"),
        ({"events": [_crash(drop=1.0)]}, "events", "drop"),
        ({"events": [_crash(drop=0.0)]}, "events", "drop"),
        ({"events": [_crash(duration_blocks=0)]}, "events", "duration_blocks"),
        ({"events": [_crash(start_block=-1)]}, "events", "start_block"),
        ({"events": [_crash(kind="pump")]}, "events", "kind"),
        ({"events": [_crash(), _crash(start_block=2_999)]}, "events", "overlap on ETH"),
        ({"regimes": [{"from_block": 5, "vol_multiplier": 0}]}, "regimes", "vol_multiplier"),
        ({"regimes": [{"from_block": 5, "vol_multiplier": 2}] * 2}, "regimes", "same block"),
        ({"jumps": {"per_day": -1, "mean": 0, "std": 0.1}}, "jumps", "per_day"),
        ({"volatility": {"ETH": 0.5}}, "volatility", "Extra inputs are not permitted"),
    ],
)
def test_validation_errors_name_the_field(overrides, field, needle):
    loc, message = _error_for(**overrides)
    assert loc[0] == field
    assert needle in message


def test_correlation_too_negative_for_three_assets():
    with pytest.raises(ValidationError, match=r"correlation\n.*below -1/\(n-1\)"):
        MarketConfig(
            start={"A": 1, "B": 1, "C": 1}, vol_annual={"A": 1, "B": 1, "C": 1}, correlation=-0.6
        )


def test_back_to_back_events_are_allowed_and_both_pin():
    events = [_crash(duration_blocks=100, recover_blocks=100), _crash(start_block=1_200, drop=0.1)]
    eth = price_path(_cfg(events=events), seed=6, blocks=4_000, block_time_s=BLOCK_S)["ETH"]
    assert abs(eth[1_100] / (eth[1_000] * 0.65) - 1) < 1e-9
    assert abs(eth[1_200] / eth[1_000] - 1) < 1e-9
    assert abs(eth[3_200] / (eth[1_200] * 0.9) - 1) < 1e-9


@pytest.mark.parametrize(("blocks", "block_time_s"), [(-1, 12.0), (10, 0.0), (10, math.nan)])
def test_bad_run_arguments(blocks, block_time_s):
    with pytest.raises(ValueError, match="must be"):
        price_path(_cfg(), seed=0, blocks=blocks, block_time_s=block_time_s)
