"""The published JSON Schemas (schemas/, from the pydantic models) are current, and describe what the
project ships and writes: every shipped scenario and sweep file, and a real run's summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from simulation.runner import run_scenario
from simulation.scenario import load_scenario
from simulation.schemas import SCHEMA_DIR, SummaryDoc, main

ROOT = Path(__file__).resolve().parent.parent


def _schema(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


def test_the_published_schemas_are_current():
    assert main(["--check"]) == 0, "run: python -m simulation.schemas"


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_scenario_meets_the_schema(path):
    jsonschema.validate(yaml.safe_load(path.read_text()), _schema("scenario"))


def test_the_scenario_schema_refuses_what_the_scenario_refuses():
    doc = yaml.safe_load((ROOT / "scenarios" / "calm.yaml").read_text())
    doc["protocol"] = {"markets": {"XRP-USD": {"maintenance": 0.05}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, _schema("scenario"))
    doc["protocol"] = {"markets": {"ETH-USD": {"maintenace": 0.05}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, _schema("scenario"))


def test_the_shipped_sweeps_meet_the_schema():
    paths = sorted((ROOT / "sweeps").glob("*.yaml"))
    assert paths
    for path in paths:
        jsonschema.validate(yaml.safe_load(path.read_text()), _schema("sweep"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"base": "x.yaml", "sedes": 3}, _schema("sweep"))


def test_a_real_summary_meets_the_schema(tmp_path):
    sc = load_scenario(ROOT / "scenarios" / "adversaries.yaml").model_copy(update={"blocks": 30})
    code, _ = run_scenario(sc, tmp_path, progress=False, backend="revm", report=False)
    assert code == 0
    doc = json.loads((tmp_path / "summary.json").read_text())
    jsonschema.validate(doc, _schema("summary"))
    model = SummaryDoc.model_validate(doc)  # extra fields are refused: the model keeps up
    missing = [
        k for k, v in model.model_dump().items() if v is None and k not in ("fork", "external")
    ]
    assert missing == []  # a completed run (with adversaries) has every field
