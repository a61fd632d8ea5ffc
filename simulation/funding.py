"""Before the first block: every agent's wallet minted (or, on a fork, written or transferred by the
fork's funder), its approvals given and the LPs' deposits made, in three ordered phases, each one batch
of transactions mined as one block. Also the explicit nonces the engine sends with (no estimation, no
"pending" lookups in the loop)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from simulation.abi import ContractAbi
from simulation.agents.adversaries import Griefer
from simulation.agents.build import Agents, ForkContext
from simulation.deploy import Deployment, settle_lp_deposits
from simulation.rpc import RpcError
from simulation.units import MAX_UINT, USDC

KEEPER_USDC = 5_000_000
"""Quote tokens each keeper holds to buy collateral in cross liquidations."""

SetupTx = tuple[str, str, str]
"""(sender, to, calldata) of a set-up transaction."""


class Nonces:
    """Each sender's next nonce, read once from the chain and counted here after."""

    def __init__(self, batch: Callable[[list[tuple[str, list[Any]]]], list[Any]]):
        self._batch = batch
        self._next: dict[str, int] = {}

    def sync(self, senders: Iterable[str]) -> None:
        order = sorted(senders)
        counts = self._batch([("eth_getTransactionCount", [a, "pending"]) for a in order])
        self._next.update({a: int(n, 16) for a, n in zip(order, counts, strict=True)})

    def take(self, sender: str) -> int:
        n = self._next[sender]
        self._next[sender] = n + 1
        return n


def wallets(agents: Agents, addresses: Mapping[str, str]) -> list[tuple[str, float, str]]:
    """(holder, quote tokens in USD, the contract it approves) for every funded address."""
    vault, pool = addresses["MarginVault"], addresses["LPPool"]
    out = [(t.address, t.cfg.wallet_usd, vault) for t in agents.traders]
    out += [(k.address, KEEPER_USDC, vault) for k in [*agents.keepers, *agents.plugins]]
    out += [(lp.address, lp.cfg.deposit_usd, pool) for lp in agents.lps]
    for adv in agents.adversaries:
        start = adv.cfg.wallet_usd + adv.cfg.deposit_usd
        out += [(w, start if w == adv.address else 0, vault) for w in adv.addresses]
        out.append((adv.address, 0, pool))
    return out


def setup_phase(rpc: Any, nonces: Nonces, txs: list[SetupTx]) -> None:
    """Send `txs` in one batch, mine them as one block, and fail loudly if any was refused, left
    unmined or reverted."""
    if not txs:
        return
    nonces.sync({f for f, _, _ in txs})
    hashes = rpc.batch(
        [
            (
                "eth_sendTransaction",
                [
                    {
                        "from": f,
                        "to": to,
                        "data": d,
                        "gas": hex(500_000),
                        "nonce": hex(nonces.take(f)),
                    }
                ],
            )
            for f, to, d in txs
        ]
    )
    refused = [(i, h) for i, h in enumerate(hashes) if isinstance(h, RpcError)]
    if refused:
        raise RuntimeError(f"set-up transaction {refused[0][0]} refused: {refused[0][1].message}")
    rpc.call("evm_mine", [])  # every nonce is there, so one block holds the whole phase
    receipts = rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
    missing = sum(not isinstance(r, dict) for r in receipts)
    if missing:
        raise RuntimeError(f"{missing} set-up transactions were not mined")
    bad = [i for i, r in enumerate(receipts) if r["status"] != "0x1"]
    if bad:
        raise RuntimeError(f"set-up transaction {bad[0]} reverted (to {txs[bad[0]][1]})")


def fund(
    rpc: Any,
    nonces: Nonces,
    d: Deployment,
    abis: Mapping[str, ContractAbi],
    token_kind: str,
    agents: Agents,
    fork: ForkContext | None,
    deposit_cooldown_s: int,
) -> None:
    """Mint, approve, deposit. On a fork the real quote token is not minted: the fork's funder writes
    or transfers it."""
    rpc.call("evm_setAutomine", [False])
    a, token, pool = d.addresses, abis[token_kind], abis["LPPool"]
    held = wallets(agents, a)
    if fork is not None:
        fork.fund("USDC", [(who, int(usd * USDC)) for who, usd, _ in held if usd > 0])
    else:
        mints = [
            (d.deployer, a["USDC"], token["mint"].calldata(who, int(usd * USDC)))
            for who, usd, _ in held
            if usd > 0
        ]
        # the griefers' dust collateral (of the token of the market they do not trade)
        mints += [
            (d.deployer, a[adv.dust_token], token["mint"].calldata(adv.address, adv.dust_units))
            for adv in agents.adversaries
            if isinstance(adv, Griefer)
        ]
        setup_phase(rpc, nonces, mints)
    approvals = [
        (who, a["USDC"], token["approve"].calldata(spender, MAX_UINT)) for who, _, spender in held
    ]
    approvals += [
        (adv.address, a[t], token["approve"].calldata(a["MarginVault"], MAX_UINT))
        for adv in agents.adversaries
        if adv.cfg.kind == "griefer"
        for t in ("WETH", "WBTC")
    ]
    # portfolio traders switch their cross account to portfolio margin (with the approvals: no position yet)
    approvals += [
        (t.address, a["MarginVault"], abis["MarginVault"]["setPortfolioMargin"].calldata(True))
        for t in agents.traders
        if t.cfg.margin_mode == "portfolio"
    ]
    setup_phase(rpc, nonces, approvals)
    deposits = [
        (
            lp.address,
            a["LPPool"],
            pool["deposit"].calldata(int(lp.cfg.deposit_usd * USDC), lp.address),
        )
        for lp in agents.lps
    ]
    setup_phase(rpc, nonces, deposits)
    if agents.lps:
        # The LPs' deposits settle before trading starts (they count in the pool's trading
        # liquidity only after the deposit cooldown).
        settle_lp_deposits(rpc.call, deposit_cooldown_s)


def fund_external(
    rpc: Any,
    nonces: Nonces,
    d: Deployment,
    token: ContractAbi,
    holdings: Mapping[str, int],
    bots: Mapping[str, str],
    unlocked: set[str],
) -> None:
    """The outside bots' wallets (`holdings`: symbol -> units, minted by the deployer) and their
    approvals of the vault (every token) and the pool (the quote). A bot at an address the node does
    not hold a key for (`unlocked`: lowercase addresses it does) is impersonated for its approvals and
    given 100 ETH for gas."""
    a, vault, pool = d.addresses, d.addresses["MarginVault"], d.addresses["LPPool"]
    foreign = [who for who in bots.values() if who.lower() not in unlocked]
    for who in foreign:
        rpc.call("anvil_setBalance", [who, hex(100 * 10**18)])
        rpc.call("anvil_impersonateAccount", [who])
    setup_phase(
        rpc,
        nonces,
        [
            (d.deployer, a[symbol], token["mint"].calldata(who, units))
            for who in bots.values()
            for symbol, units in holdings.items()
        ],
    )
    approvals = [
        (who, a[symbol], token["approve"].calldata(vault, MAX_UINT))
        for who in bots.values()
        for symbol in holdings
    ]
    approvals += [
        (who, a["USDC"], token["approve"].calldata(pool, MAX_UINT)) for who in bots.values()
    ]
    setup_phase(rpc, nonces, approvals)
    for who in foreign:
        rpc.call("anvil_stopImpersonatingAccount", [who])
