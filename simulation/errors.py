"""Decode the protocol's custom errors from revert data, so Python callers can branch on them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode
from web3 import Web3


@dataclass(frozen=True)
class DecodedError:
    name: str
    args: dict[str, Any]

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.name}({inner})"


class ErrorDecoder:
    """Maps 4-byte selectors of every custom error in the given ABIs to their names and inputs."""

    def __init__(self, abis: Iterable[Sequence[Mapping[str, Any]]]):
        self._by_selector: dict[str, Mapping[str, Any]] = {}
        for abi in abis:
            for item in abi:
                if item.get("type") == "error":
                    types = ",".join(i["type"] for i in item["inputs"])
                    selector = (
                        Web3.keccak(text=f"{item['name']}({types})").hex().removeprefix("0x")[:8]
                    )
                    self._by_selector[selector] = item

    def decode(self, data: str | bytes) -> DecodedError | None:
        raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else data
        item = self._by_selector.get(raw[:4].hex())
        if item is None:
            return None
        values = decode([i["type"] for i in item["inputs"]], raw[4:])
        return DecodedError(
            item["name"], {i["name"]: v for i, v in zip(item["inputs"], values, strict=True)}
        )
