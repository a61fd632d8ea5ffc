"""Differential test of contracts/libraries/MarginMath.sol against its Python mirror
simulation/margin_math.py (as Morpho Blue's MathLibTest): every MarginMath function, called through
contracts/harness/MarginMathHarness.sol, must return what the Python function of the same name returns
on the same inputs, and revert exactly when the Python raises.

Adding a function to MarginMath: expose it in the harness, mirror it in simulation/margin_math.py and add
one line to CASES (its name -> a strategy of its arguments); test_every_function_is_compared fails until
all three are done.

Pure math, no deployed system: not a `contract` test, so it does not run again on the fork.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import ape
import pytest
from eth_abi import decode, encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.types import RPCEndpoint

from simulation import margin_math as mm
from simulation.build import Artifact
from simulation.deploy import deploy_contract
from simulation.paths import CONTRACTS_DIR

MARGIN_MATH_SOL = CONTRACTS_DIR / "libraries" / "MarginMath.sol"
HARNESS = "MarginMathHarness"
EXAMPLES = 200  # per function
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

WAD = 10**18
UINT_MAX = 2**256 - 1
INT_MIN, INT_MAX = -(2**255), 2**255 - 1
PANIC_SELECTOR = "0x4e487b71"  # Panic(uint256)
PANIC_OVERFLOW, PANIC_DIVISION_BY_ZERO = 0x11, 0x12

# ------------------------------------------------------------------ input strategies


def _magnitude(max_bits: int) -> st.SearchStrategy[int]:
    """Integers spread over every magnitude up to 2**max_bits - 1 (not just huge ones)."""
    return st.integers(0, max_bits).flatmap(lambda bits: st.integers(0, 2**bits - 1))


def _around(values: list[int], lo: int, hi: int) -> st.SearchStrategy[int]:
    """Each edge value and its neighbours, clipped to [lo, hi]."""
    near = sorted({v + d for v in values for d in (-1, 0, 1) if lo <= v + d <= hi})
    return st.sampled_from(near)


uint256 = st.one_of(
    _around([0, WAD, 10**30, 2**128, 2**255, UINT_MAX], 0, UINT_MAX),
    _magnitude(256),
    st.integers(0, UINT_MAX),
)
int256 = st.one_of(
    _around([INT_MIN, -WAD, 0, WAD, INT_MAX], INT_MIN, INT_MAX),
    st.builds(lambda m, negative: -m if negative else m, _magnitude(255), st.booleans()),
    st.integers(INT_MIN, INT_MAX),
)
# Values a market really sees, so that most examples do not revert.
usd = st.integers(0, 10**12 * WAD)  # up to $1e12
size = st.integers(-(10**9) * WAD, 10**9 * WAD)  # +-1e9 tokens (wad)
price = st.one_of(st.sampled_from([1, WAD, 3000 * WAD, 10**30]), st.integers(1, 10**30))
ratio = st.one_of(st.sampled_from([0, 1, WAD - 1, WAD, WAD + 1]), st.integers(0, 2 * WAD))
decimals = st.one_of(
    *[st.integers(0, 18)] * 3, st.integers(19, 255)
)  # > 77 reverts: 10 ** decimals
amount = st.one_of(st.integers(0, 10**30), uint256)


def real_or_edge(real: st.SearchStrategy[int], edge: st.SearchStrategy[int]) -> Any:
    return st.one_of(real, edge)


U = real_or_edge(usd, uint256)  # a USD value, uint256
S = real_or_edge(size, int256)  # a position size, int256
P = real_or_edge(price, uint256)  # a price, uint256
R = real_or_edge(ratio, uint256)  # a ratio / fraction, uint256
E = real_or_edge(st.integers(-(10**12) * WAD, 10**12 * WAD), int256)  # a signed USD value
# a quote token's price: at par most often, a depeg, or any uint256 (0 must revert: a division by it)
QP = st.one_of(st.just(WAD), st.integers(WAD // 2, 2 * WAD), P)


@st.composite
def health(draw: st.DrawFn) -> tuple[int, int, int]:
    """(equityUsd, initialUsd, maintenanceUsd), often with equity right at a requirement."""
    initial, maintenance = draw(U), draw(U)
    at = draw(st.sampled_from([initial, maintenance]))
    equity = draw(st.one_of(E, st.integers(-1, 1).map(lambda d: at + d)))
    return (max(INT_MIN, min(INT_MAX, equity)), initial, maintenance)


# Solidity function name -> strategy of its argument tuple. One line per MarginMath function.
CASES: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "mulDivDown": st.tuples(U, R, st.one_of(st.sampled_from([0, 1, WAD]), R)),
    "mulDivUp": st.tuples(U, R, st.one_of(st.sampled_from([0, 1, WAD]), R)),
    "mulWadDown": st.tuples(U, R),
    "mulWadUp": st.tuples(U, R),
    "quoteToUsdDown": st.tuples(amount, decimals, QP),
    "quoteToUsdUp": st.tuples(amount, decimals, QP),
    "usdToQuoteDown": st.tuples(U, decimals, QP),
    "usdToQuoteUp": st.tuples(U, decimals, QP),
    "signedUsdToQuoteFloor": st.tuples(E, decimals, QP),
    "valueUsdDown": st.tuples(amount, decimals, P),
    "notionalUsdUp": st.tuples(S, P),
    "notionalUsdDown": st.tuples(S, P),
    "pnlUsdFloor": st.tuples(S, P, P),
    "entryNotionalSigned": st.tuples(S, P),
    "requirementUsdUp": st.tuples(U, R),
    "tieredRequirementUsdUp": st.tuples(U, R, st.one_of(U, st.just(0)), R),
    "positionHealth": st.tuples(E, S, P, P, R, R, st.one_of(U, st.just(0)), R),
    "isLiquidatable": st.tuples(health()),
    "meetsInitial": st.tuples(health()),
    "fillPriceAgainstTrader": st.tuples(P, S, R),
    "averageEntryAgainstTrader": st.tuples(S, P, S, P),
    "volatilityBufferUp": st.one_of(
        st.tuples(R, R, R, R),
        # (vol - floor) * slope beyond uint256: the only way it reverts, rare in the draws above
        st.tuples(st.integers(2**255, UINT_MAX), st.just(0), st.integers(2 * WAD, UINT_MAX), R),
    ),
    "liquidationFractionUp": st.tuples(E, U, U),
    "scaleSizeUp": st.tuples(S, R),
    "tradeFeeFractionUp": st.tuples(R, R, R, U, st.one_of(st.just(0), U)),
    "fundingIndexDeltaAwayFromZero": st.tuples(
        P, R, S, st.one_of(st.just(0), U), st.one_of(st.integers(0, 10**8), uint256)
    ),
    "fundingPnlUsdFloor": st.tuples(S, E, E),
    "fundingEntryTowardZero": st.tuples(S, E),
    "tradersFundingUsdCeil": st.tuples(S, E, E),
    "portfolioRequirementUsdUp": st.tuples(st.lists(E, max_size=4), R),
}
NEVER_REVERT = {"isLiquidatable", "meetsInitial"}  # comparisons only: no arithmetic to revert

# ------------------------------------------------------------------ the two sides


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def margin_math_functions(source: str) -> dict[str, str]:
    """Every `function name(...)` in a Solidity source -> its visibility."""
    source = re.sub(r"//[^\n]*|/\*.*?\*/", "", source, flags=re.DOTALL)  # comments
    found: dict[str, str] = {}
    for m in re.finditer(r"\bfunction\s+(\w+)\s*\(([^{;]*)[{;]", source):
        words = set(re.findall(r"\b\w+\b", m.group(2).split(")", 1)[-1]))
        vis = next((v for v in ("private", "internal", "public", "external") if v in words), "")
        found[m.group(1)] = vis
    return found


@dataclasses.dataclass
class Reverted:
    """A call that reverted; panic is the Panic(uint256) code, None for another revert."""

    panic: int | None


class Harness:
    """MarginMathHarness through raw eth_call: ~1.5 ms a call, against ~3 ms for a web3 contract call
    and ~5.5 ms for ape's."""

    def __init__(self, w3: Web3, address: str, abi: list[dict[str, Any]]):
        self.w3, self.address = w3, address
        self.fns = {e["name"]: e for e in abi if e["type"] == "function"}

    @staticmethod
    def _types(params: list[dict[str, Any]]) -> list[str]:
        return [
            f"({','.join(Harness._types(p['components']))})" if p["type"] == "tuple" else p["type"]
            for p in params
        ]

    def call(self, name: str, args: tuple[Any, ...]) -> Any:
        fn = self.fns[name]
        ins, outs = self._types(fn["inputs"]), self._types(fn["outputs"])
        selector = Web3.keccak(text=f"{name}({','.join(ins)})")[:4]
        data = "0x" + (selector + encode(ins, list(args))).hex()
        response = self.w3.provider.make_request(
            RPCEndpoint("eth_call"), [{"to": self.address, "data": data}, "latest"]
        )
        if "error" in response:
            revert = response["error"].get("data") or ""
            if isinstance(revert, dict):
                revert = revert.get("data", "")
            if revert.startswith(PANIC_SELECTOR):
                return Reverted(int(revert[10:], 16))
            return Reverted(None)
        (result,) = decode(outs, bytes.fromhex(response["result"][2:]))
        return result


def python_call(name: str, args: tuple[Any, ...]) -> Any:
    """The mirror of `name` on the same arguments (structs as mm.Health); an exception is returned."""
    fn: Callable[..., Any] = getattr(mm, snake(name))
    py_args = [mm.Health(*a) if isinstance(a, tuple) else a for a in args]
    try:
        result = fn(*py_args)
    except ArithmeticError as e:  # OverflowError, ZeroDivisionError: what Solidity reverts on
        return e
    return dataclasses.astuple(result) if isinstance(result, mm.Health) else result


# ------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def harness(artifacts: dict[str, Artifact], owner: Any) -> Harness:
    provider_w3 = ape.chain.provider.web3
    # A middleware-free client on ape's own anvil: same node, far less per-call overhead.
    w3 = Web3(Web3.HTTPProvider(provider_w3.provider.endpoint_uri), middleware=[])
    art = artifacts[HARNESS]
    return Harness(w3, deploy_contract(provider_w3, art, owner.address), art.abi)


def test_every_function_is_compared(artifacts: dict[str, Artifact]) -> None:
    functions = margin_math_functions(MARGIN_MATH_SOL.read_text(encoding="utf8"))
    reachable = {name for name, vis in functions.items() if vis != "private"}
    assert reachable, f"no functions parsed from {MARGIN_MATH_SOL}"
    assert sorted(CASES) == sorted(reachable), "CASES must list every MarginMath function"
    exposed = {e["name"] for e in artifacts[HARNESS].abi if e["type"] == "function"}
    assert exposed == reachable, f"{HARNESS} must expose every MarginMath function"
    missing = [snake(n) for n in sorted(reachable) if not callable(getattr(mm, snake(n), None))]
    assert not missing, f"simulation/margin_math.py lacks {missing}"


def test_function_parser() -> None:
    source = (
        "/// @notice unlike function z(uint256) below\n"
        "function a(uint256 x) internal pure returns (uint256) {}\n"
        "function _b(uint8 d) private pure returns (uint256) {}\n"
        "function c(\n  int256 x,\n  uint256 y\n) internal pure returns (Health memory h) {}"
    )
    assert margin_math_functions(source) == {"a": "internal", "_b": "private", "c": "internal"}


OUTCOMES: Counter[tuple[str, str]] = Counter()


@pytest.mark.parametrize("name", sorted(CASES))
def test_solidity_matches_python(harness: Harness, name: str) -> None:
    @SETTINGS
    @given(args=CASES[name])
    def check(args: tuple[Any, ...]) -> None:
        sol, py = harness.call(name, args), python_call(name, args)
        if isinstance(sol, Reverted):
            OUTCOMES[name, "revert"] += 1
            assert isinstance(py, ArithmeticError), f"Solidity reverted, Python returned {py!r}"
            expected = {PANIC_OVERFLOW: OverflowError, PANIC_DIVISION_BY_ZERO: ZeroDivisionError}
            kind = expected.get(sol.panic or 0, ArithmeticError)
            assert isinstance(py, kind), f"Solidity Panic({sol.panic}), Python {py!r}"
        else:
            OUTCOMES[name, "ok"] += 1
            assert not isinstance(py, ArithmeticError), f"Python raised {py!r}, Solidity {sol!r}"
            assert sol == py

    check()
    assert OUTCOMES[name, "ok"] > 0, "no example returned: the strategy only reaches reverts"
    assert OUTCOMES[name, "revert"] > 0 or name in NEVER_REVERT, "no example reverted"


class WrapsInsteadOfReverting(Exception):
    """MarginMath returned a value for a result that int256 cannot hold."""


# A result >= 2**255 that MarginMath once cast with a plain `int256(x)`, wrapping instead of reverting
# (found by this test); it casts with SafeCast.toInt256 now, and these must revert.
UNCHECKED_CASTS = [
    ("pnlUsdFloor", (INT_MAX, 0, 2 * WAD)),  # a long gains 2**256 - 2: reported as a loss of 2
    ("entryNotionalSigned", (INT_MAX, 2 * WAD)),  # +(2**256 - 2) reported as -2
    ("isLiquidatable", ((0, 0, 2**255),)),  # maintenance 2**255 read as -2**255: not liquidatable
    ("meetsInitial", ((0, 2**255, 0),)),  # initial 2**255 read as -2**255: met with no equity
    ("liquidationFractionUp", (1, 2**255, 0)),  # target 1.25 * 2**255 read as negative: closes 0
]


@pytest.mark.parametrize(("name", "args"), UNCHECKED_CASTS, ids=[c[0] for c in UNCHECKED_CASTS])
def test_results_too_large_for_int256_revert(
    harness: Harness, name: str, args: tuple[Any, ...]
) -> None:
    """Each wrapped before MarginMath used SafeCast.toInt256; the model raises Int256CastOverflow."""
    assert isinstance(python_call(name, args), mm.Int256CastOverflow)
    result = harness.call(name, args)
    if not isinstance(result, Reverted):
        raise WrapsInsteadOfReverting(f"{name}{args} returned {result!r}")


def test_portfolio_requirement_by_hand() -> None:
    """Two legs of $1,000 of requirement each: a hedge (long one, short the other) at correlation 0.8
    needs sqrt(2 - 1.6) = 0.632 of one leg's; the same side, sqrt(2 + 1.6) = 1.897 (never the sum, 2); no
    correlation, sqrt(2) = 1.414; one leg alone, itself."""
    k = 1_000 * WAD
    corr = 8 * WAD // 10
    assert mm.portfolio_requirement_usd_up([k, -k], corr) == math.isqrt(4 * 10**41) + 1  # $632.46
    assert mm.portfolio_requirement_usd_up([k, k], corr) == math.isqrt(36 * 10**41) + 1  # $1,897.37
    assert mm.portfolio_requirement_usd_up([k, -k], 0) == math.isqrt(2 * 10**42) + 1  # $1,414.21
    assert mm.portfolio_requirement_usd_up([k, 0], corr) == k
    assert mm.portfolio_requirement_usd_up([k, -k], WAD) == 0  # perfectly correlated: no net risk
    assert mm.portfolio_requirement_usd_up([], corr) == 0
