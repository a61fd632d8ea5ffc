"""Agents named in a scenario: `class: package.module:Class`, or a name in the `marginsim.agents`
entry-point group (a package registers its agents there; the built-in keeper is `keeper`). A class that
cannot be found, is not an agent, or rejects its config gets one line naming the scenario entry."""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from simulation.agents.base import Agent
from simulation.scenario import PluginSpec, first_error, one_line

GROUP = "marginsim.agents"


class PluginError(ValueError):
    """A plugin that cannot be used: the message names it and why."""


def registered() -> dict[str, str]:
    """Name -> `module:Class` of every agent registered in the entry-point group."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def _import(module: str, where: Path | None) -> Any:
    """Import `module` from the Python path, else from the working directory or `where` (the scenario's
    directory), which are searched after the path."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or not module.startswith(e.name):
            raise  # the module itself imports something missing: say that
    for d in (Path.cwd(), where):
        if d is not None and str(d) not in sys.path:
            sys.path.append(str(d))
    return importlib.import_module(module)


def load_class(name: str, where: Path | None = None) -> type[Agent]:
    """The agent class `name` names: `package.module:Class`, or an entry point's name."""
    path = name
    if ":" not in name:
        known = registered()
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise PluginError(
                f"{name!r} is neither package.module:Class nor a registered agent ({listed})"
            )
        path = known[name]
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise PluginError(f"{path!r}: give it as package.module:Class")
    try:
        obj: Any = _import(module, where)
    except Exception as e:  # any failure of the plugin's own import is the plugin's
        raise PluginError(f"{path}: cannot import {module}: {type(e).__name__}: {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise PluginError(f"{path}: {module} has no {attr}")
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Agent)):
        raise PluginError(f"{path}: not an agent class (a subclass of simulation.api.Agent)")
    return obj


def plugin_spec(entry: str, raw: dict[str, Any], where: Path | None) -> PluginSpec:
    """Scenario entry `entry` (e.g. `keepers.2`) with a `class`: its class found and its config
    validated by the class's Config. Raises a ValueError whose one line starts with `entry`."""
    name = raw["class"]
    if not isinstance(name, str):
        raise ValueError(f"{entry}.class: a string, got {type(name).__name__}")
    try:
        cls = load_class(name, where)
    except PluginError as e:
        raise ValueError(f"{entry}.class: {e}") from None
    fields = {k: v for k, v in raw.items() if k != "class"}
    try:
        config = cls.Config.model_validate(fields)
    except ValidationError as e:
        raise ValueError(one_line(f"{entry} ({name}): {first_error(e)}")) from None
    return PluginSpec.model_validate({"class": name, "config": config})


def build(spec: PluginSpec) -> type[Agent]:
    """The class of a validated spec (already imported once: found again from the module cache)."""
    return load_class(spec.class_path)
