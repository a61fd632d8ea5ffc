"""Calldata encoding and output decoding, prepared once per function shape from the ABI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak


def _type(item: Mapping[str, Any]) -> str:
    """ABI type string, tuples expanded: (int256,uint256,uint256)."""
    t = str(item["type"])
    if t.startswith("tuple"):
        inner = ",".join(_type(c) for c in item["components"])
        return f"({inner}){t[5:]}"
    return t


@dataclass(frozen=True)
class Function:
    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def calldata(self, *args: Any) -> str:
        return "0x" + (self.selector + encode(list(self.inputs), list(args))).hex()

    def decode_output(self, data: str) -> tuple[Any, ...]:
        return tuple(decode(list(self.outputs), bytes.fromhex(data[2:])))


class ContractAbi:
    """The functions of one contract type by name, each encoded the same way every call."""

    def __init__(self, abi: list[Mapping[str, Any]]):
        self.functions: dict[str, Function] = {}
        for item in abi:
            if item.get("type") != "function":
                continue
            inputs = tuple(_type(i) for i in item["inputs"])
            sig = f"{item['name']}({','.join(inputs)})"
            outputs = tuple(_type(o) for o in item["outputs"])
            self.functions[item["name"]] = Function(item["name"], keccak(text=sig)[:4], inputs, outputs)

    def __getitem__(self, name: str) -> Function:
        return self.functions[name]


@dataclass(frozen=True)
class Event:
    name: str
    indexed: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]


class EventDecoder:
    """Decodes logs of the given ABIs by topic0 into (name, args)."""

    def __init__(self, abis: list[list[Mapping[str, Any]]]):
        self.events: dict[str, Event] = {}
        for abi in abis:
            for item in abi:
                if item.get("type") != "event":
                    continue
                types = [_type(i) for i in item["inputs"]]
                topic = "0x" + keccak(text=f"{item['name']}({','.join(types)})").hex()
                idx = tuple((i["name"], t) for i, t in zip(item["inputs"], types, strict=True) if i["indexed"])
                dat = tuple((i["name"], t) for i, t in zip(item["inputs"], types, strict=True) if not i["indexed"])
                self.events[topic] = Event(item["name"], idx, dat)

    def decode(self, log: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
        topics = log["topics"]
        ev = self.events.get(topics[0]) if topics else None
        if ev is None:
            return None
        args: dict[str, Any] = {}
        for (name, t), topic in zip(ev.indexed, topics[1:], strict=True):
            args[name] = decode([t], bytes.fromhex(topic[2:]))[0]
        values = decode([t for _, t in ev.data], bytes.fromhex(log["data"][2:]))
        args.update({name: v for (name, _), v in zip(ev.data, values, strict=True)})
        return ev.name, args
