"""Chain access and reference-model reads for tests/test_invariants.py.

Everything goes through web3.py on ape's own provider (fast), and every health number is recomputed with
simulation.margin_math from raw chain reads so the invariants compare the contracts with the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.types import RPCEndpoint

from simulation import margin_math as mm
from simulation.deploy import Deployment
from simulation.errors import ErrorDecoder

GAS = 3_000_000
USDC_DEC = 6
NO_POSITION = "0x0000000000000000000000000000000000000000"


@dataclass
class Outcome:
    ok: bool
    receipt: Any
    error: str | None  # decoded custom error name (or raw message) when the tx reverted


class Harness:
    def __init__(self, system: Deployment, w3: Any, owner: str, traders: list[str], keeper: str):
        # A middleware-free client on ape's own anvil endpoint: same node, half the per-call overhead.
        self.w3 = Web3(Web3.HTTPProvider(w3.provider.endpoint_uri), middleware=[])
        self.system = system
        self.owner, self.traders, self.keeper = owner, traders, keeper

        def c(name: str) -> Any:
            return self.w3.eth.contract(
                address=Web3.to_checksum_address(system.addresses[name]),
                abi=system.abis[system.kinds[name]],
            )

        self.vault, self.lens, self.oracle = c("MarginVault"), c("MarginLens"), c("OracleAdapter")
        self.pool, self.insurance = c("LPPool"), c("InsuranceFund")
        self.tokens = {s: c(s) for s in ("USDC", "WETH", "WBTC")}
        self.feeds = {"WETH": c("FEED_WETH"), "WBTC": c("FEED_WBTC")}
        self.usdc = self.tokens["USDC"]
        self.decoder = ErrorDecoder(system.abis.values())
        self.n_markets = self.vault.functions.marketCount().call()
        self.market_asset = [
            self.vault.functions.market(i).call()[0] for i in range(self.n_markets)
        ]
        self.collateral = self.vault.functions.collateralTokens().call()
        self.collateral_cfg = {
            t: self.vault.functions.collateralConfig(t).call() for t in self.collateral
        }
        self.params = [
            self.vault.functions.market(i).call()[5] for i in range(self.n_markets)
        ]  # fixed here
        self._vol_cache: dict[tuple[str, int], int] = {}

    # ---------------------------------------------------------------- transactions

    def rpc(self, method: str, params: list[Any]) -> Any:
        return self.w3.provider.make_request(RPCEndpoint(method), params).get("result")

    def send(self, fn: Any, sender: str) -> Outcome:
        receipt = self.w3.eth.wait_for_transaction_receipt(
            fn.transact({"from": sender, "gas": GAS})
        )
        if receipt["status"] == 1:
            return Outcome(True, receipt, None)
        try:
            fn.call({"from": sender})
            return Outcome(False, receipt, "reverted (call succeeds: out of gas?)")
        except ContractLogicError as e:
            data = e.data if isinstance(e.data, str) else None
            decoded = (
                self.decoder.decode(data)
                if data and data.startswith("0x") and len(data) >= 10
                else None
            )
            return Outcome(False, receipt, decoded.name if decoded else str(e.message or e)[:80])

    # ---------------------------------------------------------------- raw reads

    def open_positions(self) -> dict[int, tuple]:
        n = self.vault.functions.openPositionCount().call()
        ids, ps = self.vault.functions.openPositions(0, n).call()
        return dict(zip(ids, [tuple(p) for p in ps], strict=True))

    def balance(self, token: str, who: str) -> int:
        return self.tokens[token].functions.balanceOf(who).call()

    def coll(self, account: str, token: str) -> int:
        return self.vault.functions.collateralBalance(account, self.tokens[token].address).call()

    def cross_state(self, account: str) -> tuple:
        positions = tuple(
            tuple(self.vault.functions.crossPosition(account, m).call())
            for m in range(self.n_markets)
        )
        return positions + tuple(self.coll(account, t) for t in self.tokens)

    def price(self, asset_address: str) -> int:
        return self.oracle.functions.priceWad(asset_address).call()

    # ---------------------------------------------------------------- reference model

    def model_market_state(self, m: int) -> tuple[int, int, int]:
        """(price, initial ratio, maintenance ratio) from the oracle and the market params, via the model."""
        params = self.params[m]
        asset = self.market_asset[m]
        buffer = 0
        if params[11] > 0:
            vol = self.oracle.functions.hourlyVolatilityWad(asset).call()
            buffer = mm.volatility_buffer_up(vol, params[9], params[10], params[11])
        return self.price(asset), params[0] + buffer, params[1] + buffer

    def model_volatility(self, symbol: str) -> int:
        feed = self.feeds[symbol]
        cfg = self.oracle.functions.feedConfig(self.tokens[symbol].address).call()
        window = cfg[
            3
        ]  # FeedConfig(feed, heartbeat, decimals, volWindowRounds, minPriceWad, maxPriceWad)
        latest = feed.functions.latestRoundData().call()[0]
        if (symbol, latest) in self._vol_cache:
            return self._vol_cache[symbol, latest]
        first = max(1, latest - window)
        rounds = [
            tuple(feed.functions.getRoundData(r).call()[1:4:2]) for r in range(first, latest + 1)
        ]
        vol = self._vol_cache[symbol, latest] = mm.hourly_volatility_wad(rounds, window)
        return vol

    def model_isolated_health(self, p: tuple, states: dict[int, tuple]) -> mm.Health:
        _, market_id, _, size, margin, entry = p
        price, ir, mr = states[market_id]
        return mm.position_health(mm.quote_to_usd(margin, USDC_DEC), size, entry, price, ir, mr)

    def model_account_health(self, account: str, states: dict[int, tuple]) -> mm.Health:
        equity = mm.quote_to_usd(
            self.vault.functions.collateralBalance(account, self.usdc.address).call(), USDC_DEC
        )
        for token in self.collateral:
            amount = self.vault.functions.collateralBalance(account, token).call()
            if amount:
                _, dec, weight, _ = self.collateral_cfg[token]
                equity += mm.mul_wad_down(mm.value_usd_down(amount, dec, self.price(token)), weight)
        h = mm.Health(equity, 0, 0)
        for m in range(self.n_markets):
            size, entry = self.vault.functions.crossPosition(account, m).call()
            if size:
                price, ir, mr = states[m]
                h = h + mm.position_health(0, size, entry, price, ir, mr)
        return h

    def states(self) -> dict[int, tuple]:
        return {m: self.model_market_state(m) for m in range(self.n_markets)}
