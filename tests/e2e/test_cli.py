"""The CLI as a newcomer uses it: `scenario run --json` on the examples, `audit verify`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, PACKAGED_EXAMPLES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def sharinghub(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "sharinghub.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )


def test_scenario_run_reproduces_every_example_with_its_own_embedded_hub(tmp_path: Path) -> None:
    scenarios = EXAMPLES if EXAMPLES.exists() else PACKAGED_EXAMPLES
    run = sharinghub(
        ["scenario", "run", str(scenarios), "--json"],
        tmp_path,
        {"SHARINGHUB_SESSION_TIMEOUT_MS": "6000"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    expected = {
        json.loads(line)["id"]: json.loads(line)["expected"]
        for line in scenarios.read_text().splitlines()
        if line.strip()
    }
    assert report["summary"] == {"total": len(expected), "matched": len(expected), "differing": 0}
    for s in report["scenarios"]:
        exp = expected[s["id"]]
        assert s["matched"] and s["differences"] == []
        assert s["outcome"] == exp["outcome"]
        assert set(s["allowed_categories"]) == set(exp["allowed_categories"])
        assert set(s["obligations"]) == set(exp["obligations"])
        if s["outcome"] == "delivered":
            delivered = {f["name"] for f in s["inbox_message"]["fields"]}
            assert not delivered & set(exp["must_exclude_fields"])
            text = json.dumps(s["inbox_message"]).lower()
            assert not any(v.lower() in text for v in exp["must_not_contain"])
        else:
            assert s["inbox_message"] is None
    # the ledger the run wrote verifies, and a checkpoint of its head holds
    verify = sharinghub(["audit", "verify", "--json"], tmp_path)
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["rows_checked"] >= len(expected)
    checkpoint = sharinghub(["audit", "checkpoint", "--out", "cp.json"], tmp_path)
    assert checkpoint.returncode == 0, checkpoint.stderr
    assert sharinghub(["audit", "check", "cp.json"], tmp_path).returncode == 0
    # someone edits a decision directly in the database: verify names the row, check fails
    db = tmp_path / ".sharinghub" / "sharinghub.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_ledger SET reason_code = reason_code || '-x' WHERE seq = 3")
    tampered = sharinghub(["audit", "verify"], tmp_path)
    assert tampered.returncode == 1
    assert "#3" in tampered.stderr
    assert sharinghub(["audit", "check", "cp.json"], tmp_path).returncode == 1


def test_policy_simulate_compares_packs_and_delivers_nothing(tmp_path: Path) -> None:
    scenarios = EXAMPLES if EXAMPLES.exists() else PACKAGED_EXAMPLES
    run = sharinghub(
        ["policy", "simulate", "--pack", "us_ca", "--input", str(scenarios), "--json"], tmp_path
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert len(report["requests"]) == 12
    assert report["totals"]["outcome_before"]
    by_id = {r["id"]: r for r in report["requests"]}
    # us_ca makes one documented rule stricter/looser; unrelated purposes do not move
    assert by_id["ex-07-invalid-complaining-tenant"]["changed"] == []
    assert not (tmp_path / ".sharinghub").exists()  # nothing started, nothing delivered


def test_scenario_run_reports_a_clear_error_for_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    run = sharinghub(["scenario", "run", str(bad)], tmp_path)
    assert run.returncode == 2
    assert "bad.jsonl:1" in run.stderr


def _stat(pid: int | str) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, …); None once gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _descendants(root: int) -> set[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(entry.name)
        if fields is not None:  # else it exited while we looked
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _running(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def _start_up(cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """`up --urgent-processes` once it says it is up, and what it printed until then."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env["SHARINGHUB_SESSION_TIMEOUT_MS"] = "6000"
    up = subprocess.Popen(
        [sys.executable, "-m", "sharinghub.cli", "up", "--urgent-processes"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert up.stdout is not None
    seen = []
    for _ in range(200):  # bounded: `up` prints ~12 lines before it is ready
        line = up.stdout.readline()
        seen.append(line)
        if not line or "Ctrl-C stops everything" in line:
            break
    return up, "".join(seen)


def _end_leftovers(up: subprocess.Popen[str], children: set[int]) -> None:
    if up.poll() is None:
        up.kill()
        up.wait(timeout=10)
    for pid in children:  # what this test started, should `up` have left it running
        if _running(pid):
            os.kill(pid, signal.SIGKILL)


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads the process tree in /proc"
)


@needs_proc
def test_up_stopped_with_sigterm_stops_the_broker_and_services_it_started(tmp_path: Path) -> None:
    up, printed = _start_up(tmp_path)
    children: set[int] = set()
    try:
        assert printed.rstrip().endswith("Ctrl-C stops everything."), printed
        # `up` says it is up only once all eight processes answered /ready; into a pipe (no
        # terminal) it writes whole lines: one every 15 s while waiting, then the count
        counts = [line for line in printed.splitlines() if "of 8 ready" in line]
        assert counts and counts[-1].startswith("  services   8 of 8 ready ("), printed
        assert all(line.endswith("…") for line in counts[:-1]), printed
        children = _descendants(up.pid)
        assert len(children) >= 9, children  # the broker and eight service processes
        up.terminate()
        out, _ = up.communicate(timeout=90)
        assert up.returncode == 0, out
        assert "stopping" in out
        assert not [pid for pid in children if _running(pid)]
    finally:
        _end_leftovers(up, children)


@needs_proc
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_up_killed_with_sigkill_leaves_no_broker_or_service_running(tmp_path: Path) -> None:
    up, printed = _start_up(tmp_path)
    children: set[int] = set()
    try:
        assert "Ctrl-C stops everything" in printed, printed
        children = _descendants(up.pid)
        assert len(children) >= 9, children
        up.kill()  # no handler runs: the kernel tells each child its parent is gone
        up.wait(timeout=10)
        running = set(children)
        for _ in range(120):  # bounded: services stop within their shutdown timeout
            running = {pid for pid in running if _running(pid)}
            if not running:
                break
            time.sleep(0.5)
        assert not running, f"still running after `up` was killed: {sorted(running)}"
    finally:
        _end_leftovers(up, children)
