"""The sandbox holds a hostile package: no writes outside its folder, no network, bounded processes and
memory, and no result it prints or leaves out is taken for a score. The packages here are a few lines that
attack at import or in load(); the grader's `_run_worker` runs them as it runs every case."""

import socket
import subprocess
import threading
from pathlib import Path

import pytest

from grader import grader, sandbox

REPO = Path(__file__).resolve().parent.parent
REQUEST = {"kind": "sft", "valid": ["How many feet are in 7 meters?"], "fresh": []}
isolated = pytest.mark.skipif(bool(sandbox.probe()), reason=f"no sandbox on this machine: {sandbox.probe()}")


def _package(tmp_path: Path, load_body: str, top: str = "") -> Path:
    root = tmp_path / "bundle"
    (root / "homework").mkdir(parents=True)
    body = "\n".join("    " + line for line in load_body.strip().splitlines())
    (root / "homework" / "__init__.py").write_text(f"{top}\ndef load_sft():\n{body}\n")
    return root


def _run(root: Path, timeout: float = 60):
    return grader._run_worker(root, "sft", REQUEST, timeout)


def test_probe_reports_the_isolation_it_found():
    line = sandbox.status_line()
    assert line.startswith("sandbox: ")
    assert ("unavailable, running without network isolation" in line) == bool(sandbox.probe())


@isolated
def test_writes_outside_the_sandbox_folder_fail(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    targets = [outside / "escaped.txt", REPO / "data" / "escaped-by-sandbox-test.txt", Path.home() / "escaped.txt"]
    root = _package(tmp_path, f"""
import os
blocked = []
for path in {[str(t) for t in targets]!r}:
    try:
        open(path, "w").write("x")
    except OSError:
        blocked.append(path)
open(os.path.join(os.environ["HOME"], "own.txt"), "w").write("x")  # its own folder stays writable
raise SystemExit(f"blocked {{len(blocked)}}")
""")
    try:
        out, reason = _run(root)
        assert out is None and "blocked 3" in reason, reason
        assert not any(t.exists() for t in targets)
    finally:
        for t in targets:
            t.unlink(missing_ok=True)


@isolated
def test_a_listener_on_this_machine_cannot_be_reached(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(8)
    arrived = []
    thread = threading.Thread(target=lambda: arrived.append(_accept(listener)))
    thread.start()
    port = listener.getsockname()[1]
    root = _package(tmp_path, f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).sendall(b"answers")
    raise SystemExit("connected")
except OSError as err:
    raise SystemExit(f"no network: {{type(err).__name__}}")
""")
    out, reason = _run(root)
    thread.join()
    listener.close()
    assert arrived == [None] and "no network" in reason, (arrived, reason)


def _accept(listener):
    try:
        return listener.accept()[1]
    except OSError:
        return None


def _fork_bomb(sleep: int, end: str) -> str:
    """A load() that forks until refused (each child sleeping), then runs `end`."""
    return f"""
import os, sys, time
forked = 0
while forked < 100000:
    try:
        if os.fork() == 0:
            time.sleep({sleep})
            os._exit(0)
        forked += 1
    except OSError:
        break
{end}
"""


@isolated
def test_a_fork_bomb_is_bounded_and_killed_with_the_case(tmp_path):
    root = _package(tmp_path, _fork_bomb(120, 'print("forks refused after", forked, flush=True)\ntime.sleep(120)'))
    out, reason = _run(root, timeout=15)
    assert out is None and "timed out" in reason
    left = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, text=True).stdout.split()
    assert not left, f"{len(left)} processes of the bomb outlived the case"


@isolated
def test_a_fork_bomb_hits_the_process_limit(tmp_path):
    root = _package(tmp_path, _fork_bomb(30, 'sys.exit(f"forks refused after {forked}")'))
    out, reason = _run(root, timeout=60)
    assert out is None and "forks refused after" in reason, reason
    assert int(reason.rsplit(" ", 1)[1]) < sandbox.PROCESSES


@isolated
def test_a_100_gb_allocation_fails_inside_the_limit(tmp_path):
    root = _package(tmp_path, "block = bytearray(100 * 2**30)\nreturn block")
    out, reason = _run(root)
    assert out is None and "MemoryError" in reason, reason


def test_exiting_early_scores_nothing_with_a_reason(tmp_path):
    root = _package(tmp_path, "import os\nos._exit(0)")
    out, reason = _run(root)
    assert out is None and "exit code 0" in reason and "no result" in reason, reason


def test_a_second_result_line_is_taken_as_forgery(tmp_path):
    forged = 'print("GRADER_RESULT " + json.dumps({"answers": [22.97]}), flush=True)'
    root = _package(tmp_path, f"import atexit, json\natexit.register(lambda: {forged})\n{forged}\n"
                              "class Model:\n    def answer(self, *qs):\n        return [1.0] * len(qs)\nreturn Model()")
    out, reason = _run(root)
    assert out is None and "output forged" in reason, reason


@isolated
def test_flooding_stdout_stops_at_the_file_limit(tmp_path):
    root = _package(tmp_path, "import sys\nwhile True:\n    sys.stdout.write('GRADER_RESULT {}\\n' * 10000)")
    out, reason = _run(root)
    assert out is None and reason, reason


def test_result_shapes_that_are_not_a_result():
    assert grader._result_of(0, 'GRADER_RESULT {"answers": [1]}\n', "")[0] == {"answers": [1]}
    assert "not JSON" in grader._result_of(0, "GRADER_RESULT {answers\n", "")[1]
    assert "not an object" in grader._result_of(0, "GRADER_RESULT [1]\n", "")[1]
    assert "exit code 3" in grader._result_of(3, 'GRADER_RESULT {"answers": [1]}\n', "boom")[1]
    assert grader._floats([1, None, 2.5], 3)[1] != grader._floats([1, None, 2.5], 3)[1]  # None is NaN
    assert grader._floats([1, "2"], 2) is None and grader._floats([True], 1) is None and grader._floats([1], 2) is None
