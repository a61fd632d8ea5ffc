"""Plugin agents: the two example keepers (examples/keepers/, written only against simulation.api) race
the built-in keepers through a crash and are scored in the keeper table; a plugin found by import path
or by entry point is the same agent; a plugin that cannot be used is refused in one line, exit 2."""

from __future__ import annotations

import csv
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_bad_input import _cli, _refused, _scenario

from simulation import plugins
from simulation.agents.keepers import Keeper
from simulation.runner import run_scenario
from simulation.scenario import KeeperConfig, PluginSpec, load_scenario

ROOT = Path(__file__).resolve().parent.parent
RACE = ROOT / "examples" / "keepers" / "race.yaml"
LIQUIDATED = {"IsolatedLiquidated", "CrossLiquidated"}
"""One event per liquidation (a cross liquidation also emits one CrossPositionLiquidated per leg)."""


@pytest.fixture(scope="module")
def race(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("race") / "run"
    code, summary = run_scenario(load_scenario(RACE), out, progress=False, backend="revm")
    assert code == 0 and summary["status"] == "completed"
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    return summary, events


def test_the_example_keepers_race_the_built_in_ones(race):
    summary, events = race
    table = summary["keepers"]
    assert list(table) == ["fast", "medium", "slow", "greedy", "gas-aware"]
    # each keeper's liquidations, counted again from the chain's events by the sender they came from
    by_agent: dict[str, int] = {}
    for e in events:
        if e["event"] in LIQUIDATED:
            by_agent[e["agent"]] = by_agent.get(e["agent"], 0) + 1
    for name, row in table.items():
        assert row["liquidations"] == by_agent.get(name, 0), name
    assert sum(r["liquidations"] for r in table.values()) == summary["liquidations"]["count"]
    greedy, gas_aware = table["greedy"], table["gas-aware"]
    assert greedy["liquidations"] > 0 and gas_aware["liquidations"] > 0
    # every keeper aims at the same targets: whoever loses a race reverts and wastes its gas
    assert greedy["lost_races"] > 0 and greedy["wasted_gas"] > 0
    # the gas-aware keeper bids from the reward: it wins the rich targets, so it is paid more for each
    assert gas_aware["rewards_usd"] / gas_aware["liquidations"] > (
        greedy["rewards_usd"] / greedy["liquidations"]
    )
    # report cards: the plugins aim at every target, so they miss no episode; the fast built-in keeper
    # passes on the ones whose reward is below its gas (min_profit_usd), so it misses some
    assert greedy["missed"] == gas_aware["missed"] == 0 and table["fast"]["missed"] > 0
    assert gas_aware["latency_blocks_p50"] is not None and gas_aware["latency_blocks_p50"] >= 0
    assert 0 < gas_aware["wasted_gas_usd"] < gas_aware["gas_usd"]


def test_the_report_shows_the_plugin_keepers(race, tmp_path):
    summary, _ = race
    from simulation.report import keeper_table

    html = keeper_table(summary["keepers"])
    assert "greedy" in html and "gas-aware" in html
    for heading in (
        "missed episodes",
        "latency p50 (blocks)",
        "wasted gas (USD)",
        "latent bad debt",
    ):
        assert heading in html


def test_a_plugin_by_path_or_entry_point_is_the_built_in_keeper(tmp_path):
    """The built-in keeper is registered as `keeper` and importable by path: all three load as one
    class, with its own config model validating the fields."""
    doc = yaml.safe_load(RACE.read_text())
    doc["keepers"] = [
        {"name": "plain", "priority_fee_gwei": 2},
        {"name": "by-path", "class": "simulation.agents.keepers:Keeper", "priority_fee_gwei": 2},
        {"name": "by-name", "class": "keeper", "priority_fee_gwei": 2},
    ]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    sc = load_scenario(path)
    plain, by_path, by_name = sc.keepers
    assert isinstance(plain, KeeperConfig)
    for spec in (by_path, by_name):
        assert isinstance(spec, PluginSpec)
        assert plugins.build(spec) is Keeper
        assert spec.config == plain.model_copy(update={"name": spec.name})
    assert plugins.registered()["keeper"] == "simulation.agents.keepers:Keeper"
    # a plugin entry survives the dump and reload every sweep and compare run goes through
    again = type(sc).model_validate(sc.model_dump(mode="json"))
    assert again == sc


BROKEN = {
    "broken_import.py": "import a_module_that_is_not_installed\n",
    "not_agent.py": "class Thing:\n    pass\n",
    "strict_agent.py": textwrap.dedent(
        """
        from pydantic import Field
        from simulation.api import Agent, AgentConfig

        class Config(AgentConfig):
            bid_gwei: float = Field(1.0, ge=0)

        class Strict(Agent):
            Config = Config

            def decide(self, obs):
                return []
        """
    ),
}


@pytest.mark.parametrize(
    ("cls", "extra", "names"),
    [
        ("no_such_module:Keeper", {}, ["keepers.0.class", "no_such_module"]),
        ("broken_import:Keeper", {}, ["keepers.0.class", "a_module_that_is_not_installed"]),
        ("not_agent:Missing", {}, ["keepers.0.class", "has no Missing"]),
        ("not_agent:Thing", {}, ["keepers.0.class", "not an agent class"]),
        ("nothing_registered", {}, ["keepers.0.class", "nothing_registered", "keeper"]),
        ("strict_agent:Strict", {"bid_gwi": 2}, ["keepers.0", "strict_agent:Strict", "bid_gwi"]),
        ("strict_agent:Strict", {"bid_gwei": -1}, ["keepers.0", "bid_gwei"]),
        ("keeper", {"priority_fee_gwei": "fast"}, ["keepers.0", "priority_fee_gwei"]),
    ],
)
def test_a_plugin_that_cannot_be_used_is_refused(tmp_path, capfd, monkeypatch, cls, extra, names):
    for name, text in BROKEN.items():
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the scenario's directory joins it
    path = _scenario(tmp_path, {"keepers.0": {"name": "mine", "class": cls, **extra}})
    code, err = _cli(capfd, "run", str(path), "--out", str(tmp_path / "out"))
    _refused(code, err, *names)
    assert not (tmp_path / "out").exists()


def test_the_docs_example_is_the_shipped_one_and_it_trades(tmp_path):
    """docs/agents.md shows examples/agents/lag_trader.py whole; run in the calm scenario, it opens
    positions when the market runs ahead of the oracle and closes them once the oracle caught up."""
    code = (ROOT / "examples" / "agents" / "lag_trader.py").read_text()
    doc = (ROOT / "docs" / "agents.md").read_text()
    assert f"```python\n{code}```" in doc
    assert len(code.splitlines()) <= 35
    out = tmp_path / "run"
    scenario = load_scenario(ROOT / "examples" / "agents" / "lag.yaml")
    code_, summary = run_scenario(scenario, out, progress=False, backend="revm", report=False)
    assert code_ == 0 and summary["status"] == "completed"
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    with (out / "timeseries.csv").open() as f:
        rows = {int(r["block"]): r for r in csv.DictReader(f)}
    opened = [e for e in events if e["agent"] == "lag" and e["event"] == "IsolatedOpened"]
    closed = [e for e in events if e["agent"] == "lag" and e["event"] == "IsolatedClosed"]
    assert opened and len(closed) >= len(opened) - 1
    for e in opened:
        # decided for its block on the snapshot of the block before: the block's market price above
        # the oracle round then on chain by the edge
        market, oracle = rows[e["block"]]["price_ETH"], rows[e["block"] - 1]["oracle_ETH"]
        assert float(market) > float(oracle) * 1.003, (e, market, oracle)
