"""The sandbox every process that imports a graded bundle runs in, built from util-linux alone.

    python -m grader.sandbox          # says whether this machine can isolate, and how

What it promises, when `probe()` finds it working:

- **no network**: a network namespace of its own (`unshare --net`), with no interface up, not even loopback,
  so neither the internet nor a listener on the grader's 127.0.0.1 can be reached;
- **one writable folder**: a mount namespace in which every mount is remounted read-only (the grader's
  checkout, `data/`, the graded package, the user's home and /tmp included), except a fresh empty folder
  that becomes HOME and TMPDIR;
- **no privileges**: inside the namespaces the bundle's process holds no capability at all (an empty
  bounding set and no new privileges), so it cannot undo the read-only mounts or the namespaces;
- **limits**: address space (`MEMORY_BYTES`), file size (`FILE_BYTES`: stdout and stderr are files the
  grader reads, so a flood stops there), CPU seconds and no core files (`prlimit`); processes
  (`PROCESSES`): the user's process limit, except for root, whose processes the kernel does not count, which
  gets a pids cgroup of its own instead;
- **one process tree**: a PID namespace whose first process is killed with the grader's wall-clock timeout,
  and every process in it with it.

Where user namespaces or the tools are missing, `probe()` says why and the grader runs the bundle without
isolation, saying so in one line; scores never depend on the sandbox (they come from the clean room).
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

MEMORY_BYTES = 12 * 2**30  # address space: the honest worker maps ~6 GB and keeps ~1.7 GB resident
FILE_BYTES = 64 * 2**20  # largest file a sandboxed process may write, its stdout and stderr files included
PROCESSES = 256  # threads count: torch's and the tokenizer's pools are a few dozen
PIDS_CGROUPS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))

# Runs inside the namespaces as their root: every mount read-only, the work folder writable again, then the
# command with no capabilities left and the limits set.
_SETUP = r"""
awk '{print $2}' /proc/self/mounts | sort -u | while read -r mp; do
    mp=$(printf '%b' "$mp")
    mount -o remount,bind,ro "$mp" 2>/dev/null || true
done
mount --bind "$SANDBOX_DIR" "$SANDBOX_DIR" && mount -o remount,bind,rw "$SANDBOX_DIR" || exit 97
exec setpriv --bounding-set=-all --inh-caps=-all --no-new-privs -- \
    prlimit --as="$SANDBOX_AS" --fsize="$SANDBOX_FSIZE" --nproc="$SANDBOX_NPROC" --cpu="$SANDBOX_CPU" --core=0 -- "$@"
"""
_JOIN_CGROUP = 'echo $$ > "$SANDBOX_CGROUP/cgroup.procs" && exec "$@"'


def _tools() -> str:
    return ", ".join(t for t in ("unshare", "prlimit", "setpriv", "awk", "mount") if not shutil.which(t))


class Sandbox:
    """One sandboxed run's folder and process limits; `argv` and `env` build its command, `close` cleans up."""

    def __init__(self, cpu_seconds: int, parent: Path | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="sandbox-", dir=parent))
        self.cpu_seconds = cpu_seconds
        self.cgroup = _pids_cgroup() if os.geteuid() == 0 else None

    def argv(self, argv: list[str]) -> list[str]:
        join = ["sh", "-c", _JOIN_CGROUP, "cgroup"] if self.cgroup else []
        return join + ["unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork",
                       "--kill-child", "--mount-proc", "sh", "-c", _SETUP, "sandbox"] + list(argv)

    def env(self) -> dict[str, str]:
        """The grader's environment minus PYTHONPATH, with HOME and the temporary folder in the sandbox's folder."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        home = str(self.dir)
        # the user's cache stays where it is, read-only inside: it holds the embedded model's converted copy
        # (base_llm.embedded_model_dir), which the grader makes before any case runs
        env.update(HOME=home, TMPDIR=home, HF_HOME=f"{home}/hf", MPLCONFIGDIR=f"{home}/mpl",
                   XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"),
                   PYTHONDONTWRITEBYTECODE="1", SANDBOX_DIR=home,
                   SANDBOX_AS=str(MEMORY_BYTES), SANDBOX_FSIZE=str(FILE_BYTES), SANDBOX_NPROC=str(PROCESSES), SANDBOX_CPU=str(self.cpu_seconds),
                   SANDBOX_CGROUP=str(self.cgroup or ""))
        return env

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.cgroup:
            _kill_cgroup(self.cgroup)


def _pids_cgroup() -> Path | None:
    """A fresh pids cgroup capped at PROCESSES (cgroup v1's pids hierarchy, or v2 where pids is delegated),
    or None where this process cannot make one."""
    for root in PIDS_CGROUPS:
        v2 = (root / "cgroup.subtree_control").exists()
        if not (root / "cgroup.procs").exists() or (v2 and "pids" not in (root / "cgroup.subtree_control").read_text()):
            continue
        if not v2 and root.name != "pids":  # a v1 hierarchy of another controller
            continue
        try:
            path = Path(tempfile.mkdtemp(prefix="grader-sandbox-", dir=root))
        except OSError:
            continue
        try:
            (path / "pids.max").write_text(f"{PROCESSES}\n")
            return path
        except OSError:
            path.rmdir()
    return None


def _kill_cgroup(path: Path) -> None:
    """Kill whatever is left in the cgroup (the PID namespace normally took it already), then remove it."""
    import signal
    import time

    for _ in range(50):
        try:
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)
    try:
        path.rmdir()
    except OSError:
        pass


_PROBE = r"""
import os, socket, sys
out = []
try:
    open(sys.argv[1], "w").write("x"); out.append("wrote outside its folder")
except OSError:
    pass
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=2); out.append("reached the network")
except OSError:
    pass
try:
    open(os.path.join(os.environ["SANDBOX_DIR"], "ok"), "w").write("x")
except OSError as err:
    out.append(f"cannot write its own folder ({err})")
print("; ".join(out) or "isolated")
"""


@functools.lru_cache(maxsize=1)
def probe() -> str:
    """"" when the sandbox isolates on this machine, else the reason it cannot (tried once per process)."""
    if not sys.platform.startswith("linux"):
        return f"no Linux namespaces on {sys.platform}"
    missing = _tools()
    if missing:
        return f"missing {missing}"
    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as outside, socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0)
        target = Path(outside) / "escaped"
        Path(outside).chmod(0o777)  # writable to the sandbox's user, so only the sandbox can stop the write
        box = Sandbox(30)
        try:
            run = subprocess.run(box.argv([sys.executable, "-c", _PROBE, str(target),
                                           str(listener.getsockname()[1])]),
                                 env=box.env(), capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"the sandbox did not start ({err})"
        finally:
            box.close()
        said = (run.stdout.strip().splitlines() or [""])[-1]
        try:
            listener.accept()
            said += "; a connection arrived"
        except OSError:
            pass
        if run.returncode != 0 or said != "isolated" or target.exists():
            detail = said or (run.stderr.strip().splitlines() or ["no output"])[-1]
            return f"user namespaces do not isolate here ({detail[:160]})"
    return ""


def status_line() -> str:
    reason = probe()
    if reason:
        return f"sandbox: unavailable, running without network isolation ({reason})"
    processes = ("the user's process limit" if os.geteuid() != 0 else "a pids cgroup" if _pids_cgroup_possible()
                 else "not limited: root without a pids cgroup")
    return (f"sandbox: no network, read-only file system but a fresh folder, no capabilities, "
            f"{MEMORY_BYTES // 2**30} GB address space, {PROCESSES} processes ({processes})")


def _pids_cgroup_possible() -> bool:
    path = _pids_cgroup()
    if path:
        path.rmdir()
    return path is not None


if __name__ == "__main__":
    print(status_line())
