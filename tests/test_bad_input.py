"""Bad input is refused before anything starts: one line naming the file or flag, the field and the
reason, exit code 2, no anvil, no output directory.

Most cases call the CLI's `main` in this process (no chain is needed, and a subprocess per case
would cost an interpreter start each); a few run it as a real subprocess, where a traceback or a
multi-line dump would show on stderr as a user sees it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from marginsim_cli import MARGINSIM, ROOT, marginsim

from simulation.cli import main

CALM = ROOT / "scenarios" / "calm.yaml"


def _cli(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`marginsim ARGS` in this process: (exit code, stderr)."""
    capfd.readouterr()
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse's errors
        code = int(e.code or 0)
    return code, capfd.readouterr().err


def _refused(code: int, err: str, *names: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), f"one line expected, got: {err!r}"
    assert "Traceback" not in err and "validation error" not in err, err
    for name in names:
        assert name in err, f"{name!r} not named in: {err!r}"


def _scenario(tmp_path: Path, patch: dict[str, Any]) -> Path:
    """calm.yaml with `patch` applied: keys are dotted paths (list items by index)."""
    doc = yaml.safe_load(CALM.read_text())
    for dotted, value in patch.items():
        *parents, last = dotted.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[int(last) if isinstance(node, list) else last] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


# --- the scenario file itself ------------------------------------------------------------------


def _binary(p: Path) -> None:
    p.write_bytes(bytes(range(256)) * 4)


def _utf16(p: Path) -> None:
    p.write_text(CALM.read_text(), encoding="utf-16")


def _latin1(p: Path) -> None:
    p.write_bytes(CALM.read_text().replace("Calm", "Cälm").encode("latin-1"))


def _directory(p: Path) -> None:
    p.mkdir()


def _fifo(p: Path) -> None:
    os.mkfifo(p)  # reading it would block forever


def _not_yaml(p: Path) -> None:
    p.write_text("name: [calm\nblocks: 10\n")


def _list(p: Path) -> None:
    p.write_text("- name: calm\n")


FILES: list[tuple[Callable[[Path], None], str]] = [
    (_binary, "binary"),
    (_utf16, "UTF-16"),
    (_latin1, "UTF-8"),
    (_directory, "directory"),
    (_fifo, "regular file"),
    (_not_yaml, "YAML"),
    (_list, "mapping"),
    (lambda p: None, "no such"),
]


@pytest.mark.parametrize("make,reason", FILES, ids=[r for _, r in FILES])
def test_unusable_scenario_file(tmp_path, capfd, make, reason):
    path = tmp_path / "scenario.yaml"
    make(path)
    out = tmp_path / "out"
    code, err = _cli(capfd, "run", str(path), "--out", str(out), "--blocks", "3")
    _refused(code, err, str(path), reason)
    assert not out.exists()  # nothing started


def test_unreadable_scenario_file(tmp_path):
    """chmod 000. Root reads any file anyway (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so as root
    the CLI runs without those two capabilities (util-linux's setpriv): the kernel then refuses
    the read as it does for any other user."""
    path = tmp_path / "calm.yaml"
    path.write_text(CALM.read_text())
    path.chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")  # util-linux, on every machine of this project's kind
        assert setpriv, (
            "as root, this test needs util-linux's setpriv (chmod 000 stops no root read)"
        )
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    out = tmp_path / "out"
    r = subprocess.run(
        [*prefix, *MARGINSIM, "run", str(path), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    _refused(r.returncode, r.stderr, str(path), "cannot be read", "ermission denied")
    assert not out.exists()


# --- --seed and --blocks, for run and compare ----------------------------------------------------

FLAGS = [("--seed", "-1"), ("--blocks", "0"), ("--blocks", "-3"), ("--blocks", "1e9")]
FLAGS += [("--blocks", "1000001"), ("--seed", "1.5")]


@pytest.mark.parametrize("command", ["run", "compare"])
@pytest.mark.parametrize("flag,value", FLAGS)
def test_bad_flag(tmp_path, capfd, command, flag, value):
    out = tmp_path / "out"
    code, err = _cli(capfd, command, str(CALM), "--out", str(out), flag, value)
    _refused(code, err, flag, value, command)
    assert not out.exists()


# --- numbers: inf, NaN, 1e300 anywhere -------------------------------------------------------------

INF, NAN, HUGE = float("inf"), float("nan"), 1e300
NUMBERS: list[tuple[dict[str, Any], str]] = [
    ({"market.start.ETH": INF}, "market.start.ETH"),
    ({"market.start.BTC": NAN}, "market.start.BTC"),
    ({"market.start.ETH": HUGE}, "market.start.ETH"),
    ({"market.vol_annual.ETH": HUGE}, "market.vol_annual"),
    ({"market.vol_annual.BTC": NAN}, "market.vol_annual.BTC"),
    ({"market.drift_annual": {"ETH": -HUGE}}, "market.drift_annual"),
    ({"market.correlation": NAN}, "market.correlation"),
    ({"market.jumps": {"per_day": HUGE, "mean": 0, "std": 0.1}}, "market.jumps.per_day"),
    ({"market.jumps": {"per_day": 1, "mean": HUGE, "std": 0.1}}, "market.jumps.mean"),
    ({"market.jumps": {"per_day": 1, "mean": 0, "std": INF}}, "market.jumps.std"),
    ({"market.regimes": [{"from_block": 2, "vol_multiplier": HUGE}]}, "market.regimes.0"),
    ({"oracle.deviation": NAN}, "oracle.deviation"),
    ({"traders.0.wallet_usd": HUGE}, "traders.0.wallet_usd"),
    ({"traders.1.wallet_usd": INF}, "traders.1.wallet_usd"),
    ({"traders.0.margin_usd": {"min": 1, "max": HUGE}}, "traders.0.margin_usd.max"),
    ({"traders.2.leverage": {"min": 1, "max": NAN}}, "traders.2.leverage.max"),
    ({"traders.0.stop_loss": HUGE}, "traders.0.stop_loss"),
    ({"traders.0.take_profit": INF}, "traders.0.take_profit"),
    ({"traders.0.trade_probability": NAN}, "traders.0.trade_probability"),
    ({"traders.0.rebalance.budget_usd": HUGE}, "traders.0.rebalance.budget_usd"),
    ({"traders.0.rebalance.below_health": HUGE}, "traders.0.rebalance.below_health"),
    ({"lps.0.deposit_usd": -INF}, "lps.0.deposit_usd"),
    ({"lps.0.deposit_usd": HUGE}, "lps.0.deposit_usd"),
    ({"keepers.0.priority_fee_gwei": HUGE}, "keepers.0.priority_fee_gwei"),
    ({"keepers.1.min_profit_usd": NAN}, "keepers.1.min_profit_usd"),
    ({"keepers.1.min_profit_usd": -HUGE}, "keepers.1.min_profit_usd"),
    ({"protocol.insurance_usd": HUGE}, "protocol.insurance_usd"),
    ({"protocol.lp_liquidity_usd": INF}, "protocol.lp_liquidity_usd"),
    ({"market.depth": {"depth_usd": {"ETH": INF}, "half_life_s": 60}}, "market.depth.depth_usd"),
    ({"market.depth": {"depth_usd": {"ETH": 1e5}, "half_life_s": NAN}}, "market.depth.half_life_s"),
    ({"market.depth": {"depth_usd": {"DOGE": 1e5}, "half_life_s": 60}}, "market.depth"),
    ({"blocks": HUGE}, "blocks"),
    ({"seed": INF}, "seed"),
]


@pytest.mark.parametrize("patch,field", NUMBERS, ids=[f for _, f in NUMBERS])
def test_non_finite_or_huge_number(tmp_path, capfd, patch, field):
    path = _scenario(tmp_path, patch)
    out = tmp_path / "out"
    code, err = _cli(capfd, "run", str(path), "--out", str(out))
    _refused(code, err, str(path), field)
    assert not out.exists()


# --- what the deployed system cannot run ---------------------------------------------------------

CRASH_BELOW_BOUNDS = {
    "market.start.ETH": 20,
    "market.events": [
        {"kind": "crash", "assets": ["ETH"], "start_block": 1, "duration_blocks": 2, "drop": 0.9999}
    ],
}
DEPLOYMENT: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("leverage", {"traders.2.leverage": {"min": 2, "max": 25}}, ("traders.2.leverage.max", "20")),
    ("uint128", {"traders.1.margin_usd": {"min": 1, "max": 1e33}}, ("traders.1.margin_usd.max",)),
    ("int128", {"traders.1.margin_usd": {"min": 1, "max": 1e18}}, ("traders.1.margin_usd.max",)),
    ("wallet", {"traders.0.wallet_usd": 1e33}, ("traders.0.wallet_usd", "USDC")),
    ("start-high", {"market.start.ETH": 2e7}, ("market.start.ETH", "bounds")),
    ("start-low", {"market.start.BTC": 0.001}, ("market.start.BTC", "bounds")),
    ("path", CRASH_BELOW_BOUNDS, ("market", "ETH", "block", "bounds")),
    (
        "maintenance",
        {"protocol.markets": {"ETH-USD": {"maintenance": 0.6}}},
        ("protocol.markets.ETH-USD.maintenance", "0.5"),
    ),
    (
        "discount",
        {"protocol.collateral": {"WETH": {"weight": 0.9, "discount": 0.2}}},
        ("protocol.collateral.WETH.discount", "0.1"),
    ),
    (
        "market-leverage",
        {"protocol.markets": {"BTC-USD": {"max_leverage": 2}}},
        ("traders.", "leverage.max", "BTC-USD", "maximum leverage 2"),
    ),
]


@pytest.mark.parametrize("patch,names", [d[1:] for d in DEPLOYMENT], ids=[d[0] for d in DEPLOYMENT])
def test_scenario_the_deployment_cannot_run(tmp_path, capfd, patch, names):
    path = _scenario(tmp_path, patch)
    out = tmp_path / "out"
    code, err = _cli(capfd, "run", str(path), "--out", str(out), "--blocks", "5")
    _refused(code, err, str(path), *names)
    assert not out.exists()


def test_deployment_bounds_are_the_deployers():
    """The checks read deploy.py's constants: the leverage refused is exactly above the market's
    maximum, and the start prices allowed are exactly the mock feeds' bounds."""
    from simulation.checks import deployment_problem
    from simulation.deploy import DEFAULT_MARKETS, MOCK_FEED_BOUNDS_USD
    from simulation.scenario import load_scenario

    sc = load_scenario(CALM).model_copy(update={"blocks": 3})
    top = min(m.max_leverage for m in DEFAULT_MARKETS)
    group = sc.traders[0]
    for lev, ok in ((top, True), (top * 1.001, False)):
        g = group.model_copy(update={"leverage": group.leverage.model_copy(update={"max": lev})})
        problem = deployment_problem(sc.model_copy(update={"traders": (g, *sc.traders[1:])}))
        assert (problem is None) == ok, problem
    lo, hi = MOCK_FEED_BOUNDS_USD
    flat = {"vol_annual": {"ETH": 0.0, "BTC": 0.0}}  # the path stays at the start price
    for price, ok in ((lo, True), (hi, True), (lo * 0.99, False), (hi * 1.01, False)):
        market = sc.market.model_copy(update={"start": {"ETH": price, "BTC": 60_000.0}, **flat})
        problem = deployment_problem(sc.model_copy(update={"market": market}))
        assert (problem is None) == ok, (price, problem)


# --- the same through a real process: no traceback, fast, nothing started ------------------------


def _binary_file(tmp_path: Path) -> list[str]:
    _binary(tmp_path / "b.yaml")
    return ["run", str(tmp_path / "b.yaml")]


REAL: list[tuple[str, Callable[[Path], list[str]]]] = [
    ("binary", _binary_file),
    ("blocks-1e9", lambda _: ["compare", str(CALM), "--blocks", "1e9"]),
    ("inf", lambda t: ["run", str(_scenario(t, {"market.start.ETH": INF}))]),
    ("leverage", lambda t: ["compare", str(_scenario(t, {"traders.0.leverage.max": 21}))]),
]


@pytest.mark.parametrize("make", [m for _, m in REAL], ids=[i for i, _ in REAL])
def test_refused_by_the_real_command(tmp_path, make):
    out = tmp_path / "out"
    t0 = time.monotonic()
    r = marginsim(*make(tmp_path), "--out", str(out), timeout=60)
    _refused(r.returncode, r.stderr)
    assert time.monotonic() - t0 < 20  # an interpreter start; compiling and a chain take longer
    assert not out.exists() and r.stdout == ""


def test_adversaries_on_a_fork(capfd, tmp_path):
    """Adversaries mint dust tokens and read the local feeds' decimals: a fork run with them is refused
    before anything starts (no upstream is contacted: the URL is never reached)."""
    scenario = ROOT / "scenarios" / "adversaries.yaml"
    out = tmp_path / "out"
    code, err = _cli(
        capfd, "run", str(scenario), "--out", str(out), "--fork-url", "http://127.0.0.1:9"
    )
    _refused(code, err, str(scenario), "adversaries", "fork")
    assert not out.exists()


@pytest.mark.parametrize(
    "flag,value,names",
    [
        ("--rpc-url", "http://127.0.0.1:9", ("--backend revm", "--rpc-url")),
        ("--fork-url", "http://127.0.0.1:9", ("--backend revm", "fork")),
    ],
)
def test_the_in_process_backend_with_a_node_or_a_fork(capfd, tmp_path, flag, value, names):
    """revm runs in process: a node to use or a chain to fork is refused before anything starts."""
    out = tmp_path / "out"
    code, err = _cli(
        capfd, "run", "scenarios/calm.yaml", "--out", str(out), "--backend", "revm", flag, value
    )
    _refused(code, err, *names)
    assert not out.exists()


@pytest.mark.parametrize(
    "extra,names",
    [
        (("--seeds", "0"), ("--seeds 0", "between")),
        (("--seeds", "2", "--workers", "0"), ("--workers 0",)),
        (("--seeds", "2", "--fork-url", "http://127.0.0.1:9"), ("--seeds", "fork")),
    ],
)
def test_compare_across_seeds_refuses_bad_flags(capfd, tmp_path, extra, names):
    out = tmp_path / "out"
    code, err = _cli(capfd, "compare", str(CALM), "--out", str(out), *extra)
    _refused(code, err, *names)
    assert not out.exists()


def test_a_manipulator_needs_a_depth_to_pump(capfd, tmp_path):
    """A manipulator buys its market's outside venue: without a depth for that asset there is no venue
    to buy, and the scenario is refused naming the field."""
    text = (
        (ROOT / "scenarios" / "mango.yaml")
        .read_text()
        .replace("depth_usd: {BTC: 100000}", "depth_usd: {ETH: 100000}")
    )
    path = tmp_path / "mango.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    code, err = _cli(capfd, "run", str(path), "--out", str(out))
    _refused(code, err, str(path), "adversaries.mango", "market.depth.depth_usd.BTC")
    assert not out.exists()
