"""A scenario's base-fee path (`base_fee:` windows, a gas spike as on Black Thursday): the blocks in a
window are mined at its base fee on both backends alike, and keepers, weighing rewards against gas,
leave liquidatable positions alone until it passes: latent bad debt that the booked figure misses."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from simulation.parity import first_divergence
from simulation.runner import run_scenario
from simulation.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parent.parent
WINDOW = (100, 200)


def _crash(spike: bool) -> Scenario:
    sc = load_scenario(ROOT / "scenarios" / "crash.yaml")
    windows = [{"start_block": WINDOW[0], "end_block": WINDOW[1], "gwei": 2000}] if spike else []
    return Scenario.model_validate({**sc.model_dump(), "blocks": 240, "base_fee": windows})


def _run(sc: Scenario, out: Path, backend: str = "revm") -> pd.DataFrame:
    code, _ = run_scenario(sc, out, progress=False, backend=backend, report=False)
    assert code == 0
    return pd.read_csv(out / "timeseries.csv")


def test_a_gas_spike_stops_liquidations_and_shows_as_latent_bad_debt(tmp_path):
    spiked = _run(_crash(True), tmp_path / "spike")
    calm = _run(_crash(False), tmp_path / "calm")
    inside = spiked[(spiked.block >= WINDOW[0]) & (spiked.block < WINDOW[1])]
    assert (inside.base_fee_gwei == 2000).all()
    after = spiked[spiked.block == WINDOW[1]].base_fee_gwei.item()
    assert 1750 <= after < 2000  # EIP-1559 again: at most -12.5 % a block below its gas target
    # the same path without the spike liquidates in that window; with it, nobody does
    same = calm[(calm.block >= WINDOW[0]) & (calm.block < WINDOW[1])]
    assert same.liquidations.sum() > 0
    assert inside.liquidations.sum() == 0
    assert inside.latent_liquidatable.max() > 0 and inside.latent_bad_debt_usd.max() > 0
    assert calm.latent_bad_debt_usd.max() < inside.latent_bad_debt_usd.max()
    # and after it, keepers go back to work
    assert spiked[spiked.block >= WINDOW[1]].liquidations.sum() > 0


def test_the_spike_is_the_same_on_anvil(tmp_path):
    sc = _crash(True).model_copy(update={"blocks": 130})
    _run(sc, tmp_path / "revm")
    _run(sc, tmp_path / "anvil", backend="anvil")
    assert first_divergence(tmp_path / "revm", tmp_path / "anvil") is None
