"""Fork runs, for real and without the internet: a first anvil (chain id 1) holds, at the real mainnet
addresses, ERC-20s with the real decimals and Chainlink-style proxies in front of aggregators (put
there with anvil_setCode / anvil_setStorageAt by `marginsim upstream`'s builder); `marginsim run
--fork-url` forks it over HTTP like it would fork an archive node."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import yaml
from marginsim_cli import ROOT, marginsim
from web3 import Web3

from simulation.build import Artifact
from simulation.chain import AnvilNode, free_port
from simulation.chains import ChainInfo, chain_for
from simulation.deploy import deploy_contract, send_and_wait
from simulation.fork import (
    ForkTarget,
    FundingError,
    fund_token,
    install_feeds,
    probe_upstream,
)
from simulation.node import dev_accounts
from simulation.redact import redact, register
from simulation.relay import CountingRelay
from simulation.rpc import Rpc, RpcError
from simulation.upstream import StandIn, place, start_upstream

SECRET = "k3y-do-not-leak-4f9a"


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[AnvilNode, StandIn]]:
    node, up = start_upstream()
    try:
        yield node, up
    finally:
        node.stop()


def fingerprint(
    url: str, chain: ChainInfo, watch: list[str], artifacts: Mapping[str, Artifact]
) -> dict[str, Any]:
    """Everything a fork run writes on its own chain, read on the upstream: block, proxies' answers,
    aggregators' code, token supplies and the balances of the accounts the run funds."""
    w3 = Web3(Web3.HTTPProvider(url))
    out: dict[str, Any] = {"block": w3.eth.block_number, "hash": w3.eth.get_block("latest")["hash"]}
    proxy_abi, token_abi = artifacts["MockFeedProxy"].abi, artifacts["MockERC20"].abi
    for s, f in chain.feeds.items():
        proxy = w3.eth.contract(address=Web3.to_checksum_address(f.proxy), abi=proxy_abi)
        out[f"{s}.round"] = proxy.functions.latestRoundData().call()
        out[f"{s}.code"] = w3.eth.get_code(proxy.functions.aggregator().call())
    for s, t in chain.tokens.items():
        token = w3.eth.contract(address=Web3.to_checksum_address(t.address), abi=token_abi)
        out[f"{s}.supply"] = token.functions.totalSupply().call()
        for a in watch:
            out[f"{s}.{a}"] = token.functions.balanceOf(Web3.to_checksum_address(a)).call()
    return out


def secret_relay(upstream_url: str) -> CountingRelay:
    return CountingRelay(upstream_url, suffix=f"/?apikey={SECRET}")


def test_crash_on_a_fork_runs_on_the_upstreams_prices_and_tokens(tmp_path, upstream, artifacts):
    node, up = upstream
    agents = Web3(Web3.HTTPProvider(node.rpc_url))
    # the fork's agents are the standard mnemonic's accounts: watch their balances on the upstream
    watch = [a["address"] for a in dev_accounts(8)]
    before = fingerprint(node.rpc_url, up.chain, watch, artifacts)
    relay = secret_relay(node.rpc_url)
    try:
        r = marginsim(
            "run",
            "scenarios/crash.yaml",
            "--fork-url",
            relay.url,
            "--blocks",
            "150",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
            "--fork-cache",
            str(tmp_path / "cache"),
        )
    finally:
        relay.close()
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "completed" and s["blocks"] == 150
    # prices: the fork block's real answers start the market, in the feeds' own decimals
    for symbol in ("ETH", "BTC"):
        dec = up.chain.feeds[symbol].decimals
        assert s["market_start"][symbol] == up.answers[symbol] / 10**dec
        feed = s["fork"]["feeds"][symbol]
        assert feed["first_answer"] == up.answers[symbol]
        assert feed["first_round_id"] == up.round_ids[symbol]
        # the simulated rounds continue the feed's own ids, in its phase
        assert feed["last_round_id"] > feed["first_round_id"]
        assert feed["last_round_id"] >> 64 == up.round_ids[symbol] >> 64 == feed["phase"]
    assert s["oracle_rounds"] >= 2
    # tokens: the real addresses and decimals, funded through their storage
    assert {t: v["address"] for t, v in s["fork"]["tokens"].items()} == {
        t: i.address for t, i in up.chain.tokens.items()
    }
    assert s["fork"]["funding"] == {"USDC": ["storage", "storage"]}  # pool and insurance; agents
    assert {t: v["total_supply_at_fork"] for t, v in s["fork"]["tokens"].items()} == up.total_supply
    assert s["fork"]["block"] == up.block and s["fork"]["chain_id"] == 1
    assert s["fork"]["cache"] == "miss" and s["fork"]["start_s"] > 0
    # it is the crash: liquidations happen, the books stay consistent
    assert s["liquidations"]["count"] > 0
    assert s["invariants"]["violations"] == 0 and s["invariants"]["blocks_checked"] == 15
    report = (out / "report.html").read_text()
    assert "<h2>Fork</h2>" in report and up.chain.tokens["USDC"].address in report
    # the upstream's state was read and never written
    assert relay.fetched() > 0
    writes = [m for m in relay.counts if m.startswith(("anvil_", "evm_", "eth_send", "hardhat_"))]
    assert writes == []
    assert fingerprint(node.rpc_url, up.chain, watch, artifacts) == before
    assert agents.eth.block_number == up.block
    # and the URL (its API key) appears nowhere
    everything = r.stdout + r.stderr + "".join(p.read_text(errors="replace") for p in out.iterdir())
    assert SECRET not in everything
    assert "$MARGINSIM_FORK_URL" not in everything and "URL from --fork-url" in r.stderr


def test_a_second_run_at_the_same_block_reads_the_fork_cache(tmp_path, upstream):
    """The first run forks from --fork + $MARGINSIM_FORK_URL, the second from the scenario's own
    `fork:` section (another variable, the same block)."""
    node, up = upstream
    scenario = yaml.safe_load((ROOT / "scenarios/calm.yaml").read_text())
    scenario["fork"] = {"url_env": "MY_ARCHIVE_NODE", "block": up.block}
    (tmp_path / "forked.yaml").write_text(yaml.safe_dump(scenario))
    cache = {"MARGINSIM_FORK_CACHE": str(tmp_path / "c")}
    ways = [
        (["scenarios/calm.yaml", "--fork", "--fork-block", str(up.block)], "MARGINSIM_FORK_URL"),
        ([str(tmp_path / "forked.yaml")], "MY_ARCHIVE_NODE"),
    ]
    runs = []
    for i, (args, var) in enumerate(ways):
        relay = secret_relay(node.rpc_url)
        out = tmp_path / f"run{i}"
        try:
            r = marginsim(
                "run", *args, "--blocks", "5", "--out", str(out), "--no-progress",
                env={var: relay.url, **cache},
            )  # fmt: skip
        finally:
            relay.close()
        assert r.returncode == 0, r.stderr
        assert SECRET not in r.stdout + r.stderr and f"URL from ${var}" in r.stderr
        runs.append((json.loads((out / "summary.json").read_text()), relay))
    (first, relay1), (second, relay2) = runs
    assert first["fork"]["cache"] == "miss" and second["fork"]["cache"] == "hit"
    assert first["fork"]["block"] == second["fork"]["block"] == up.block
    assert relay1.fetched() > 20, relay1.counts
    assert relay2.fetched() == 0, relay2.counts
    assert list((tmp_path / "c").glob("*/.foundry/cache/rpc/mainnet/*/storage.json"))
    # the same state either way: the same prices and the same outcome
    for key in ("market_start", "liquidations", "tx_sent", "oracle_rounds", "lp_share_price"):
        assert first[key] == second[key]


def _one_message(r: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1, r.stderr
    assert SECRET not in r.stderr + r.stdout
    return lines[0]


def test_bad_fork_urls_end_with_one_message_and_exit_code_2(tmp_path, upstream):
    node, _ = upstream
    base = ["run", "scenarios/crash.yaml", "--out", str(tmp_path / "o"), "--no-progress"]
    msg = _one_message(marginsim(*base, "--fork-url", f"ftp://example.com/{SECRET}"))
    assert "must be http:// or https://" in msg
    msg = _one_message(marginsim(*base, "--fork-url", f"http://127.0.0.1:{free_port()}/{SECRET}"))
    assert "nothing answers there" in msg and "--fork-url" in msg
    msg = _one_message(marginsim(*base, "--fork", env={"MARGINSIM_FORK_URL": ""}))
    assert "MARGINSIM_FORK_URL is not set" in msg
    msg = _one_message(marginsim(*base, "--fork-block", "5"))
    assert "--fork-block needs a fork" in msg
    msg = _one_message(marginsim(*base, "--fork-url", node.rpc_url, "--rpc-url", node.rpc_url))
    assert "exclude each other" in msg
    msg = _one_message(
        marginsim(*base, "--fork-url", f"{node.rpc_url}/?k={SECRET}", "--fork-block", "99999999")
    )
    assert "beyond the upstream's head" in msg
    with AnvilNode(chain_id=31337) as other:
        msg = _one_message(marginsim(*base, "--fork-url", f"{other.rpc_url}/?k={SECRET}"))
    assert "chain id 31337" in msg and "no chain data file" in msg
    relay = secret_relay("http://127.0.0.1:9/")  # answers, but not with JSON-RPC
    relay.server.RequestHandlerClass.do_POST = _answer_404
    try:
        msg = _one_message(marginsim(*base, "--fork-url", relay.url))
    finally:
        relay.close()
    assert "answered HTTP 404, not JSON-RPC" in msg
    assert not (tmp_path / "o" / "report.html").exists()


def _answer_404(self: BaseHTTPRequestHandler) -> None:
    self.rfile.read(int(self.headers["Content-Length"]))
    self.send_response(404)
    self.send_header("Content-Length", "0")
    self.end_headers()


@pytest.fixture
def forked(upstream) -> Iterator[tuple[AnvilNode, StandIn]]:
    node, up = upstream
    with AnvilNode(
        accounts=3, chain_id=None, fork_url=node.rpc_url, extra_args=("--hardfork", "cancun")
    ) as fork:
        yield fork, up


def test_the_real_proxy_returns_the_simulated_round_under_the_feeds_own_ids(forked, artifacts):
    fork, up = forked
    w3 = Web3(Web3.HTTPProvider(fork.rpc_url))
    rpc = Rpc(fork.rpc_url)
    feeds = install_feeds(w3, rpc, up.chain, artifacts, w3.eth.accounts[0])
    proxy = w3.eth.contract(
        address=Web3.to_checksum_address(up.chain.feeds["ETH"].proxy),
        abi=artifacts["MockFeedProxy"].abi,
    )
    real = proxy.functions.latestRoundData().call()
    assert (real[0], real[1]) == (up.round_ids["ETH"], up.answers["ETH"])  # still the upstream's
    assert feeds["ETH"].history[-1][1] == up.answers["ETH"] and len(feeds["ETH"].history) == 12
    assert proxy.functions.decimals().call() == 8
    assert proxy.functions.description().call() == "ETH / USD"
    ts = w3.eth.get_block("latest").timestamp + 12
    rpc.batch(feeds["ETH"].round_writes(2_900_12345678, ts))
    new = proxy.functions.latestRoundData().call()
    assert new == [real[0] + 1, 2_900_12345678, ts, ts, real[0] + 1]
    # older rounds still read back through the proxy, as the adapter's volatility window does
    assert proxy.functions.getRoundData(real[0]).call()[1] == up.answers["ETH"]
    assert proxy.functions.getRoundData(real[0] - 5).call()[1] == feeds["ETH"].history[-6][1]


def test_funding_writes_balances_or_impersonates_holders_and_names_the_token(forked, artifacts):
    fork, up = forked
    rpc = Rpc(fork.rpc_url)
    w3 = Web3(Web3.HTTPProvider(fork.rpc_url))
    a, b = w3.eth.accounts[1], w3.eth.accounts[2]
    erc20 = artifacts["MockERC20"].abi
    usdc = w3.eth.contract(address=up.chain.tokens["USDC"].address, abi=erc20)
    # The holder's balance on the fork is the upstream's; funding adds to it, it does not overwrite.
    holder = up.chain.tokens["USDC"].holders[0]
    upstream_usdc = Web3(Web3.HTTPProvider(up.rpc_url)).eth.contract(
        address=up.chain.tokens["USDC"].address, abi=erc20
    )
    on_upstream = upstream_usdc.functions.balanceOf(holder).call()
    assert on_upstream > 0 and usdc.functions.balanceOf(holder).call() == on_upstream
    grants = [(a, 1_234_567), (b, 10**6), (holder, 42)]
    assert fund_token(rpc, up.chain, "USDC", grants) == "storage"
    assert usdc.functions.balanceOf(a).call() == 1_234_567
    assert usdc.functions.balanceOf(holder).call() == on_upstream + 42
    assert upstream_usdc.functions.balanceOf(holder).call() == on_upstream  # upstream untouched
    # A share-based token at WBTC's address: a written balance is off, so holders are impersonated.
    art = artifacts["MockShareToken"]
    owner = w3.eth.accounts[0]
    fresh = deploy_contract(w3, art, owner, "Share BTC", "sBTC", 8)
    wbtc = up.chain.tokens["WBTC"]
    place(w3, fresh, wbtc.address)
    token = w3.eth.contract(address=wbtc.address, abi=art.abi)
    holder = wbtc.holders[0]
    send_and_wait(w3, token.functions.mint(holder, 500 * 10**8), owner)
    send_and_wait(w3, token.functions.rebase(517 * 10**8), owner)
    assert fund_token(rpc, up.chain, "WBTC", [(a, 3 * 10**8), (b, 10**8)]) == "impersonation"
    assert token.functions.balanceOf(a).call() >= 3 * 10**8
    assert token.functions.balanceOf(b).call() >= 10**8
    assert token.functions.balanceOf(holder).call() < 517 * 10**8 - 4 * 10**8 + 2
    poor = up.chain.model_copy(
        update={"tokens": {**up.chain.tokens, "WBTC": wbtc.model_copy(update={"holders": ()})}}
    )
    with pytest.raises(FundingError) as e:
        fund_token(rpc, poor, "WBTC", [(a, 10**8)])
    assert "WBTC" in str(e.value) and wbtc.address in str(e.value)
    assert "lists no holders" in str(e.value)
    with pytest.raises(FundingError, match=r"WBTC .* own \d+ units, the agents need"):
        fund_token(rpc, up.chain, "WBTC", [(a, 10**6 * 10**8)])


def test_probe_reads_the_chain_file_for_the_upstreams_chain_id(upstream):
    node, up = upstream
    got = probe_upstream(ForkTarget(node.rpc_url, "test"))
    assert got.chain == chain_for(1) and got.block == up.block and got.head == up.block
    assert got.block_hash.startswith("0x") and got.timestamp > 1_729_000_000


def test_the_url_stays_secret_in_errors_when_the_upstream_is_gone(upstream):
    """anvil repeats the upstream URL in the errors it answers with once a fetch fails; what the
    tool reads from a fork node (and so every message and event it writes) has it redacted."""
    node, _ = upstream
    relay = secret_relay(node.rpc_url)
    with AnvilNode(
        accounts=2, chain_id=None, fork_url=relay.url, extra_args=("--hardfork", "cancun")
    ) as fork:
        relay.close()  # the upstream goes away; an account the fork has not seen must be fetched
        rpc = Rpc(fork.rpc_url)
        [answer] = rpc.batch([("eth_getBalance", ["0x" + "77" * 20, "latest"])])
        assert isinstance(answer, RpcError), answer
        assert SECRET not in answer.message and "<fork-url>" in answer.message
        with pytest.raises(RuntimeError) as e:
            rpc.call("eth_getCode", ["0x" + "78" * 20, "latest"])
        assert SECRET not in str(e.value)


def test_redact_removes_the_url_and_its_secret_parts_in_any_case():
    url = f"https://Eth-Mainnet.example.com/v2/{SECRET}?tier=pro"
    register(url)
    said = f"error sending request for url (https://eth-mainnet.example.com/v2/{SECRET.upper()}?tier=pro)"
    assert SECRET.upper() not in redact(said) and SECRET not in redact(f"key {SECRET}")
    assert "tier=pro" not in redact("?tier=pro")
    assert redact("nothing secret here") == "nothing secret here"


def test_compare_on_a_fork_runs_both_modes_at_one_block(tmp_path, upstream):
    node, up = upstream
    out = tmp_path / "cmp"
    r = marginsim(
        "compare", "scenarios/crash.yaml", "--fork", "--blocks", "40", "--out", str(out),
        "--no-progress", env={"MARGINSIM_FORK_URL": node.rpc_url,
                              "MARGINSIM_FORK_CACHE": str(tmp_path / "c")},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    runs = [json.loads((out / m / "summary.json").read_text()) for m in ("isolated", "cross")]
    assert [s["fork"]["block"] for s in runs] == [up.block, up.block]
    assert [s["fork"]["cache"] for s in runs] == ["miss", "hit"]
    assert (
        runs[0]["market_start"]
        == runs[1]["market_start"]
        == {s: up.answers[s] / 10**8 for s in ("ETH", "BTC")}
    )
    assert set(json.loads((out / "compare.json").read_text())) >= {"isolated", "cross"}
