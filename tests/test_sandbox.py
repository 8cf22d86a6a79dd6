"""The sandbox holds a hostile package: no writes outside its folder, no network, bounded processes and
memory, and no result it prints or leaves out is taken for a score. The packages here are a few lines that
attack at import or in load(); the grader's `_run_worker` runs them as it runs every case."""

import os
import socket
import subprocess
from pathlib import Path

import pytest

from grader import sandbox, untrusted

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
    return untrusted.run_worker(root, "sft", REQUEST, timeout)


def _said(tmp_path: Path, load_body: str, timeout: float = 60) -> str:
    """What a package whose load() runs load_body and exits with a message said: the case's reason for 0."""
    out, reason = _run(_package(tmp_path, load_body), timeout)
    assert out is None, out
    return reason


def test_probe_reports_the_isolation_it_found():
    line = sandbox.status_line()
    assert line.startswith("sandbox: ")
    assert ("unavailable" in line) == bool(sandbox.probe())


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
    arrived, reason = _try_to_reach(tmp_path, listener, f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {listener.getsockname()[1]}), timeout=3).sendall(b"answers")
    raise SystemExit("connected")
except OSError as err:
    raise SystemExit(f"no network: {{type(err).__name__}}")
""")
    assert arrived == [None] and "no network" in reason, (arrived, reason)


def _try_to_reach(tmp_path: Path, listener: socket.socket, load_body: str) -> tuple[list, str]:
    """(the connections that reached the listener, the case's reason) for a package whose load() runs
    load_body. A connection is queued by the kernel whether or not anyone accepts it, so it is looked for
    once the case has ended."""
    listener.listen(1)
    try:
        _, reason = _run(_package(tmp_path, load_body))
        listener.settimeout(0)
        arrived = [_accept(listener)]
    finally:
        listener.close()
    return arrived, reason


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


@isolated
def test_a_listener_on_a_file_system_socket_cannot_be_reached(tmp_path):
    """docker.sock, the D-Bus bus, X11 and SSH agents are AF_UNIX listeners in /run, /tmp or the home."""
    path = tmp_path / "host.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    arrived, reason = _try_to_reach(tmp_path, listener, f"""
import socket
try:
    s = socket.socket(socket.AF_UNIX)
    s.connect({str(path)!r})
    s.sendall(b"answers")
    raise SystemExit("connected")
except OSError as err:
    raise SystemExit(f"refused: {{type(err).__name__}}")
""")
    assert arrived == [None] and "refused" in reason, (arrived, reason)


@isolated
def test_system_v_shared_memory_dies_with_the_case(tmp_path):
    key = 0x47520000 + os.getpid() % 0xFFFF
    reason = _said(tmp_path, f"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
shmid = libc.shmget({key}, 1 << 20, 0o1000 | 0o600)  # IPC_CREAT
raise SystemExit(f"segment {{shmid}}")
""")
    assert "segment" in reason and "segment -1" not in reason, reason
    keys = [int(line.split()[0]) for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]]
    if key in keys:  # left by a sandbox without an IPC namespace: remove it, then fail
        subprocess.run(["ipcrm", "-M", str(key)], check=False)
    assert key not in keys, "the bundle's shared memory segment outlived its case on the host"


@isolated
def test_the_case_has_a_session_of_its_own_and_no_terminal(tmp_path):
    reason = _said(tmp_path, """
import os
try:
    os.close(os.open("/dev/tty", os.O_RDWR))
    tty = "opened /dev/tty"
except OSError:
    tty = "no tty"
raise SystemExit(f"leader {os.getsid(0) == os.getpid()}, {tty}")
""")
    assert "leader True, no tty" in reason, reason


@isolated
def test_dev_holds_only_the_harmless_nodes(tmp_path):
    reason = _said(tmp_path, """
import os
with open("/dev/null", "w") as f:
    f.write("x")
assert len(open("/dev/urandom", "rb").read(8)) == 8
raise SystemExit("dev " + ",".join(sorted(os.listdir("/dev"))))
""")
    names = set(reason.split("dev ", 1)[1].split(","))
    assert {"null", "zero", "urandom", "shm"} <= names and not names & {"kmsg", "tty", "mem", "pts", "console"}, names


@isolated
def test_the_grader_s_environment_stays_out(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_TEST_TOKEN", "s3cret")
    monkeypatch.setenv("HOMEWORK_TEST_SETTING", "kept")
    reason = _said(tmp_path, """
import os
raise SystemExit(f"token {'GRADER_TEST_TOKEN' in os.environ}, setting {os.environ.get('HOMEWORK_TEST_SETTING')}")
""")
    assert "token False, setting kept" in reason, reason


@isolated
def test_the_writable_folder_is_bounded_in_bytes(tmp_path):
    reason = _said(tmp_path, """
import os
written = 0
try:
    for i in range(64):
        with open(os.path.join(os.environ["HOME"], f"f{i}"), "wb") as f:
            for _ in range(3):
                f.write(b"x" * (16 << 20))
                written += 16 << 20
except OSError as err:
    raise SystemExit(f"stopped at {written} by {type(err).__name__}")
raise SystemExit(f"wrote {written}")
""", timeout=120)
    assert "stopped at" in reason, reason
    assert int(reason.split("stopped at ")[1].split()[0]) <= sandbox.HOME_BYTES


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
    assert untrusted.result_of(0, 'GRADER_RESULT {"answers": [1]}\n', "")[0] == {"answers": [1]}
    assert "not JSON" in untrusted.result_of(0, "GRADER_RESULT {answers\n", "")[1]
    assert "not an object" in untrusted.result_of(0, "GRADER_RESULT [1]\n", "")[1]
    assert "exit code 3" in untrusted.result_of(3, 'GRADER_RESULT {"answers": [1]}\n', "boom")[1]
    assert untrusted.floats([1, None, 2.5], 3)[1] != untrusted.floats([1, None, 2.5], 3)[1]  # None is NaN
    assert untrusted.floats([1, "2"], 2) is None and untrusted.floats([True], 1) is None and untrusted.floats([1], 2) is None


@pytest.mark.skipif(os.geteuid() != 0 or not (sandbox.CGROUP_ROOT / "memory" / "cgroup.procs").exists(),
                    reason="needs root and cgroup v1's memory hierarchy")
def test_root_s_tree_gets_a_memory_cgroup_and_a_pids_cgroup():
    box = sandbox.Sandbox(10)
    try:
        memory, pids = box.cgroups["memory"], box.cgroups["pids"]
        assert int((memory / "memory.limit_in_bytes").read_text()) == sandbox.TREE_MEMORY_BYTES
        assert int((pids / "pids.max").read_text()) == sandbox.PROCESSES
        assert f"{memory}" in box.env()["SANDBOX_CGROUPS"] and f"{pids}" in box.env()["SANDBOX_CGROUPS"]
    finally:
        box.close()
    assert not memory.exists() and not pids.exists()
