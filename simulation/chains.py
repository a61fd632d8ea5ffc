"""Chain data files (`chains/*.yaml`): the real tokens and Chainlink feeds a fork run wires the vaults
to. One file per chain, matched to a fork's upstream by its chain id."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from simulation.paths import PROJECT_ROOT

CHAINS_DIR = PROJECT_ROOT / "chains"

_ADDRESS = r"^0x[0-9a-fA-F]{40}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenInfo(_Model):
    address: str = Field(pattern=_ADDRESS)
    decimals: int = Field(ge=0, le=36)
    holders: tuple[str, ...] = ()
    """Accounts to impersonate when writing the balance storage does not fund an agent exactly."""

    @field_validator("holders")
    @classmethod
    def _addresses(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import re

        for h in v:
            if not re.match(_ADDRESS, h):
                raise ValueError(f"not an address: {h!r}")
        return v


class FeedInfo(_Model):
    proxy: str = Field(pattern=_ADDRESS)
    """The Chainlink proxy (EACAggregatorProxy) every consumer reads."""
    asset: str
    """Symbol of the token this feed prices (a key of `tokens`)."""
    decimals: int = Field(ge=0, le=36)
    deviation: float = Field(gt=0, lt=1)
    heartbeat_s: int = Field(gt=0)
    min_usd: float = Field(gt=0)
    max_usd: float = Field(gt=0)


class ChainInfo(_Model):
    name: str
    chain_id: int = Field(gt=0)
    quote: str
    tokens: dict[str, TokenInfo]
    feeds: dict[str, FeedInfo]

    @model_validator(mode="after")
    def _consistent(self) -> ChainInfo:
        if self.quote not in self.tokens:
            raise ValueError(f"quote: {self.quote!r} is not one of the tokens")
        for symbol, f in self.feeds.items():
            if f.asset not in self.tokens:
                raise ValueError(f"feeds.{symbol}.asset: {f.asset!r} is not one of the tokens")
        # What the simulation wires: the quote (6 decimals, as the vault's USD accounting) and the
        # two markets' base tokens with their feeds.
        if self.quote != "USDC":
            raise ValueError(f"quote: the simulation's quote token is USDC, not {self.quote!r}")
        if self.tokens[self.quote].decimals != 6:
            raise ValueError(f"tokens.{self.quote}.decimals: the quote token must have 6 decimals")
        for feed, token in (("ETH", "WETH"), ("BTC", "WBTC")):
            if token not in self.tokens:
                raise ValueError(f"tokens: {token} is needed (the {feed}-USD market's collateral)")
            if feed not in self.feeds or self.feeds[feed].asset != token:
                raise ValueError(f"feeds: a {feed} feed pricing {token} is needed")
        return self


class ChainFileError(ValueError):
    """A chain data file is missing or invalid, or no file matches a chain id."""


def load_chain_file(path: Path) -> ChainInfo:
    try:
        raw = yaml.safe_load(path.read_text())
        return ChainInfo.model_validate(raw)
    except OSError as e:
        raise ChainFileError(f"{path}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ChainFileError(f"{path}: not valid YAML: {e}") from None
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(file)"
        raise ChainFileError(f"{path}: {where}: {first['msg']}") from None


def known_chains(directory: Path = CHAINS_DIR) -> dict[int, ChainInfo]:
    """Every chain data file, by chain id."""
    chains: dict[int, ChainInfo] = {}
    for path in sorted(directory.glob("*.yaml")):
        info = load_chain_file(path)
        if info.chain_id in chains:
            raise ChainFileError(
                f"{path}: chain id {info.chain_id} is also {chains[info.chain_id].name}"
            )
        chains[info.chain_id] = info
    return chains


def chain_for(chain_id: int, directory: Path = CHAINS_DIR) -> ChainInfo:
    chains = known_chains(directory)
    if chain_id not in chains:
        have = ", ".join(f"{c.name} ({i})" for i, c in sorted(chains.items())) or "none"
        raise ChainFileError(
            f"the fork's upstream has chain id {chain_id} and there is no chain data file for it "
            f"in {directory} (known: {have}); add one like chains/mainnet.yaml"
        )
    return chains[chain_id]
