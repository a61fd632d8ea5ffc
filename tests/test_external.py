"""Outside bots in lockstep: the plain web3.py bot (examples/outside/web3_keeper.py), in its own process,
races the built-in keepers through a crash on the run's anvil, once on a dev account the run gave it and
once at an address of its own; every transaction it sent is attributed to it, and its row in the keeper
table is what its events say. A bot that registers but never acts misses every block; one that never
registers stops the run in one line; bad flags are refused in one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from marginsim_cli import MARGINSIM, ROOT
from test_bad_input import _cli, _refused

from simulation.external import DROP_AFTER, Lockstep

CRASH = ROOT / "scenarios" / "crash.yaml"
BOT = ROOT / "examples" / "outside" / "web3_keeper.py"
LIQUIDATED = {"IsolatedLiquidated", "CrossLiquidated"}
BLOCKS = 160
DEPLOYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil's account 0
OTHER = "0x" + "ab" * 20


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def raced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One crash with two outside bots: `web3bot` on a dev account, `ownkey` at its own address."""
    tmp = tmp_path_factory.mktemp("external")
    out, own = tmp / "run", Account.create()
    run = subprocess.Popen(
        [
            *MARGINSIM,
            "run",
            str(CRASH),
            "--blocks",
            str(BLOCKS),
            "--out",
            str(out),
            "--no-progress",
            "--external",
            "web3bot",
            "--external",
            f"ownkey={own.address}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    bots = {
        name: subprocess.Popen(
            [
                sys.executable,
                str(BOT),
                "--manifest",
                str(out / "manifest.json"),
                "--name",
                name,
                "--log",
                str(tmp / f"{name}.jsonl"),
                *extra,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, extra in (
            ("web3bot", ["--tip-gwei", "9"]),
            ("ownkey", ["--key", "0x" + own.key.hex().removeprefix("0x"), "--tip-gwei", "0.5"]),
        )
    }
    try:
        _, err = run.communicate(timeout=900)
        codes = {name: bot.wait(timeout=120) for name, bot in bots.items()}
    finally:
        for p in [run, *bots.values()]:
            if p.poll() is None:
                p.kill()
    return {
        "code": run.returncode,
        "err": err,
        "bot_codes": codes,
        "bot_errs": {name: bot.stderr.read() if bot.stderr else "" for name, bot in bots.items()},
        "summary": json.loads((out / "summary.json").read_text()),
        "manifest": json.loads((out / "manifest.json").read_text()),
        "events": _lines(out / "events.jsonl"),
        "sent": {name: _lines(tmp / f"{name}.jsonl") for name in bots},
        "own": own.address,
    }


def test_the_outside_bots_are_scored_beside_the_built_in_keepers(raced):
    assert raced["code"] == 0, raced["err"]
    assert raced["bot_codes"] == {"web3bot": 0, "ownkey": 0}, raced["bot_errs"]
    summary, events = raced["summary"], raced["events"]
    table = summary["keepers"]
    assert list(table)[-2:] == ["web3bot", "ownkey"]
    for name in ("web3bot", "ownkey"):
        sent = {s["hash"] for s in raced["sent"][name]}
        row = table[name]
        assert sent, f"{name} sent nothing in a crash"
        # every liquidation attributed to the bot came from a transaction the bot itself sent
        mine = [e for e in events if e["agent"] == name and e["event"] in LIQUIDATED]
        assert {e["txHash"] for e in mine} <= sent
        assert row["liquidations"] == len(mine)
        rewards = sum(int(e["keeperReward"]) for e in mine) / 10**6
        assert row["rewards_usd"] == pytest.approx(rewards, abs=1e-6)
        # each transaction it sent was mined and either liquidated or reverted (a lost race, mostly)
        assert row["liquidations"] + row["reverted"] == len(sent)
        assert row["gas_used"] > 0 and row["missed_blocks"] == 0
        assert summary["external"][name]["blocks_acted"] == BLOCKS
    # the 9 gwei bot outbids the 0.5 gwei one for the same targets
    assert table["web3bot"]["liquidations"] > table["ownkey"]["liquidations"]
    assert table["ownkey"]["lost_races"] > 0
    assert sum(r["liquidations"] for r in table.values()) == summary["liquidations"]["count"]


def test_the_manifest_gives_a_dev_bot_its_key_and_an_own_address_none(raced):
    m = raced["manifest"]
    web3bot, ownkey = m["external"]["web3bot"], m["external"]["ownkey"]
    assert Account.from_key(web3bot["private_key"]).address == web3bot["address"]
    assert ownkey["address"].lower() == raced["own"].lower() and "private_key" not in ownkey
    assert {"rpc_url", "chain_id", "addresses", "abis", "units", "sync_url"} <= set(m)


def _register_only(manifest: Path, name: str) -> threading.Thread:
    """A bot that registers and then never acts."""

    def go() -> None:
        deadline = time.monotonic() + 300
        while not manifest.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        url = json.loads(manifest.read_text())["sync_url"]
        body = json.dumps({"name": name}).encode()
        req = urllib.request.Request(f"{url}/register", body, {"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).read()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def test_a_bot_that_never_acts_misses_every_block(tmp_path, capfd):
    out = tmp_path / "run"
    _register_only(out / "manifest.json", "idle")
    code, err = _cli(
        capfd,
        "run",
        str(CRASH),
        "--blocks",
        "6",
        "--out",
        str(out),
        "--no-progress",
        "--external",
        "idle",
        "--external-timeout-s",
        "0.2",
    )
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["keepers"]["idle"]["missed_blocks"] == 6
    assert summary["external"]["idle"] == {
        "address": summary["external"]["idle"]["address"],
        "registered": True,
        "blocks_acted": 0,
        "blocks_missed": 6,
    }
    missed = [e for e in _lines(out / "events.jsonl") if e["event"] == "ExternalMissed"]
    assert [e["block"] for e in missed] == list(range(1, 7))


def test_a_bot_that_never_registers_stops_the_run(tmp_path, capfd):
    code, err = _cli(
        capfd,
        "run",
        str(CRASH),
        "--blocks",
        "5",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
        "--external",
        "ghost",
        "--register-timeout-s",
        "1",
    )
    assert code == 1
    assert "ghost did not register within 1 s" in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "external_absent"


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--external", "bad name"], "--external bad name"),
        (["--external", "bot=0x12"], "'0x12' is not a 0x-prefixed 20-byte address"),
        (["--external", "fast"], "the name 'fast' is taken"),
        (["--external", "a", "--external", "a"], "the name 'a' is taken"),
        (["--external", "a", "--backend", "revm"], "--backend revm has none"),
        (["--external", "a", "--external-timeout-s", "0"], "--external-timeout-s 0"),
        (["--external", "a", "--register-timeout-s", "-1"], "--register-timeout-s -1"),
        (["--external", f"a={DEPLOYER}"], "the run's own account 0"),
        (["--external", f"a={OTHER}", "--external", f"b={OTHER}"], "another bot has that address"),
    ],
)
def test_bad_external_flags_are_refused(tmp_path, capfd, flags, named):
    code, err = _cli(capfd, "run", str(CRASH), "--out", str(tmp_path / "run"), *flags)
    _refused(code, err, named)


def _post(url: str, body: dict[str, Any]) -> int:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as e:
        return e.code


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())


def test_the_lockstep_closes_a_block_and_stops_waiting_for_a_dead_bot():
    """In process, over real HTTP: a block whose wait is over is neither handed out nor acted on; a
    bot that missed DROP_AFTER blocks in a row is no longer waited for, and is again once it acts."""
    lock = Lockstep({"a": OTHER, "b": DEPLOYER}, block_timeout_s=0.05).start()
    try:
        for name in ("a", "b"):
            assert _post(f"{lock.url}/register", {"name": name}) == 200
        lock.wait_registered()
        for block in range(1, DROP_AFTER + 1):
            lock.open_block(block, 1000 + block, None)
            assert _post(f"{lock.url}/acted", {"name": "a", "block": block}) == 200
            assert lock.wait_acted(block) == ["b"]
        assert lock.state.dropped == {"b"}
        # the last block is closed: a late acted is refused, and /next waits for the next block
        assert _post(f"{lock.url}/acted", {"name": "b", "block": DROP_AFTER}) == 409
        got: list[dict[str, Any]] = []
        poll = threading.Thread(target=lambda: got.append(_get(f"{lock.url}/next?after=0")))
        poll.start()
        time.sleep(0.3)
        assert got == []  # not handed the closed block
        nxt = DROP_AFTER + 1
        lock.open_block(nxt, 2000, 7 * 10**9)
        poll.join(10)
        assert got == [{"block": nxt, "timestamp_s": 2000, "base_fee_wei": 7 * 10**9}]
        # b acts again: it is waited for from now on
        assert _post(f"{lock.url}/acted", {"name": "b", "block": nxt}) == 200
        assert lock.wait_acted(nxt) == ["a"]
        assert "b" not in lock.state.dropped
        assert lock.summary()["b"]["blocks_missed"] == DROP_AFTER
        assert lock.summary()["b"]["blocks_acted"] == 1
    finally:
        lock.stop()
