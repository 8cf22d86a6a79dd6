"""The sandbox every process that imports a graded bundle runs in, built from util-linux alone.

    python -m grader.sandbox          # says whether this machine can isolate, and how

What it promises, when `probe()` finds it working:

- **no network**: a network namespace of its own (`unshare --net`), with no interface up, not even loopback,
  so neither the internet nor a listener on the grader's 127.0.0.1 can be reached;
- **no way to the host's local listeners**: AF_UNIX sockets cannot be made (`deny_unix_sockets`, a seccomp
  filter the worker installs before it imports the bundle), so docker.sock, the D-Bus bus, X11 and SSH agents
  are out of reach, and /run is an empty tmpfs; an IPC namespace of its own, so System V shared memory made
  inside dies with the case;
- **one writable folder, bounded**: a mount namespace in which every mount is remounted read-only (the
  grader's checkout, `data/`, the graded package, the user's home and /tmp included), and one fresh tmpfs of
  `HOME_BYTES` and `HOME_INODES` that becomes HOME and TMPDIR, so a flood of files fills that and no disk;
- **a minimal /dev**: null, zero, full, random, urandom (and a GPU's nvidia nodes where there are some) and a
  bounded /dev/shm; no terminal, no /dev/kmsg, nothing else, even when the grader runs as root;
- **a session of its own** (`setsid`): no controlling terminal, so /dev/tty and TIOCSTI reach nobody's shell;
- **an allow-listed environment** (`ENV_KEPT`): locale, PATH, thread counts, HOMEWORK_*; no token or
  credential of the grader's reaches the bundle;
- **no privileges**: inside the namespaces the bundle's process holds no capability at all (an empty
  bounding set and no new privileges), so it cannot undo the read-only mounts or the namespaces;
- **limits**: address space (`MEMORY_BYTES`), file size (`FILE_BYTES`: stdout and stderr are files the
  grader reads, so a flood stops there), CPU seconds and no core files (`prlimit`); processes
  (`PROCESSES`): the user's process limit, except for root, whose processes the kernel does not count, which
  gets a pids cgroup of its own instead, and a memory cgroup of `TREE_MEMORY_BYTES` for the whole tree where
  the machine has the memory controller (the status line says when it has not);
- **one process tree**: a PID namespace whose first process is killed with the grader's wall-clock timeout,
  and every process in it with it.

Where user namespaces or the tools are missing, `probe()` says why, and the grader refuses to grade unless
told `--unsafe` (grader/grader.py).
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

MEMORY_BYTES = 12 * 2**30  # address space: the honest worker maps ~6 GB and keeps ~1.7 GB resident
TREE_MEMORY_BYTES = 8 * 2**30  # resident memory of the whole tree, where a memory cgroup can hold it
FILE_BYTES = 64 * 2**20  # largest file a sandboxed process may write, its stdout and stderr files included
HOME_BYTES = 512 * 2**20  # the writable folder (HOME and TMPDIR) is a tmpfs of this size ...
HOME_INODES = 20_000  # ... and this many files
SHM_BYTES = 64 * 2**20  # /dev/shm
# threads count: torch's and the tokenizer's pools grow with the cores, so the cap grows with them
PROCESSES = max(256, 16 * (os.cpu_count() or 1))
CGROUP_ROOT = Path("/sys/fs/cgroup")  # cgroup v2's unified tree, or v1's hierarchies beneath it
# what passes from the grader's environment into the sandbox, by name or by prefix; nothing else does
ENV_KEPT = ("PATH", "LANG", "LANGUAGE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM",
            "CUDA_VISIBLE_DEVICES", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "PYTHONHASHSEED")
ENV_KEPT_PREFIXES = ("LC_", "HOMEWORK_")

# Runs inside the namespaces as their root: every mount read-only, a bounded tmpfs as the one writable
# folder, a minimal /dev and an empty /run, then the command in a session of its own, with no capabilities
# left and the limits set.
_SETUP = r"""
awk '{print $2}' /proc/self/mounts | sort -u | while read -r mp; do
    mp=$(printf '%b' "$mp")
    mount -n -o remount,bind,ro "$mp" 2>/dev/null || true
done
mount -n -t tmpfs -o "size=$SANDBOX_HOME_BYTES,nr_inodes=$SANDBOX_INODES,mode=0700" tmpfs "$SANDBOX_DIR" || exit 97
dev="$SANDBOX_DIR/.dev"
mkdir "$dev" && mount -n -t tmpfs -o size=64k,nr_inodes=64,mode=0755 tmpfs "$dev" || exit 97
for node in /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/nvidia*; do
    [ -c "$node" ] || continue
    : > "$dev/${node#/dev/}" && mount -n --bind "$node" "$dev/${node#/dev/}" || exit 97
done
mkdir "$dev/shm" && mount -n -t tmpfs -o "size=$SANDBOX_SHM_BYTES,mode=1777" tmpfs "$dev/shm" || exit 97
ln -s /proc/self/fd "$dev/fd" && ln -s /proc/self/fd/0 "$dev/stdin" && ln -s /proc/self/fd/1 "$dev/stdout" &&
    ln -s /proc/self/fd/2 "$dev/stderr" || exit 97
mount -n --move "$dev" /dev || exit 97
if [ -d /run ]; then mount -n -t tmpfs -o size=64k,nr_inodes=64 tmpfs /run || exit 97; fi
exec setsid --wait setpriv --bounding-set=-all --inh-caps=-all --no-new-privs -- \
    prlimit --as="$SANDBOX_AS" --fsize="$SANDBOX_FSIZE" --nproc="$SANDBOX_NPROC" --cpu="$SANDBOX_CPU" --core=0 -- "$@"
"""
_JOIN_CGROUPS = 'for c in $SANDBOX_CGROUPS; do echo $$ > "$c/cgroup.procs" || exit 98; done; exec "$@"'


def _tools() -> str:
    return ", ".join(t for t in ("unshare", "prlimit", "setpriv", "setsid", "awk", "mount") if not shutil.which(t))


class Sandbox:
    """One sandboxed run's folders and process limits; `argv` and `env` build its command, `close` cleans up.

    `dir` is the grader's: what it writes there (the request) is read-only inside. `home` is the bundle's one
    writable folder: inside the sandbox a fresh tmpfs, gone with the case."""

    def __init__(self, cpu_seconds: int, parent: Path | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="sandbox-", dir=parent))
        self.home = self.dir / "home"
        self.home.mkdir()
        self.cpu_seconds = cpu_seconds
        self.cgroups = _cgroups() if os.geteuid() == 0 else {}

    def argv(self, argv: list[str]) -> list[str]:
        join = ["sh", "-c", _JOIN_CGROUPS, "cgroups"] if self.cgroups else []
        return join + ["unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--ipc", "--fork",
                       "--kill-child", "--mount-proc", "sh", "-c", _SETUP, "sandbox"] + list(argv)

    def env(self) -> dict[str, str]:
        """The allow-listed part of the grader's environment, with HOME and TMPDIR the sandbox's folder."""
        env = {k: v for k, v in os.environ.items() if k in ENV_KEPT or k.startswith(ENV_KEPT_PREFIXES)}
        home = str(self.home)
        # the user's cache stays where it is, read-only inside: it holds the embedded model's converted copy
        # (checkpoints.embedded_model_dir), which the grader makes before any case runs
        env.update(HOME=home, TMPDIR=home, HF_HOME=f"{home}/hf", MPLCONFIGDIR=f"{home}/mpl",
                   XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache"),
                   PYTHONDONTWRITEBYTECODE="1", SANDBOX_DIR=home, SANDBOX_HOME_BYTES=str(HOME_BYTES),
                   SANDBOX_INODES=str(HOME_INODES), SANDBOX_SHM_BYTES=str(SHM_BYTES),
                   SANDBOX_AS=self.address_space(), SANDBOX_FSIZE=str(FILE_BYTES), SANDBOX_NPROC=str(PROCESSES),
                   SANDBOX_CPU=str(self.cpu_seconds), SANDBOX_CGROUPS=" ".join(sorted({str(p) for p in self.cgroups.values()})))
        env.setdefault("PATH", os.defpath)
        return env

    def address_space(self) -> str:
        """MEMORY_BYTES, except on a GPU host whose tree a memory cgroup holds: CUDA maps far more address
        space than it uses, so there the cgroup is the limit."""
        gpu = any(Path("/dev").glob("nvidia[0-9]*"))
        return "unlimited" if gpu and "memory" in self.cgroups else str(MEMORY_BYTES)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        for path in set(self.cgroups.values()):
            _kill_cgroup(path)


# controller: (its limit file in cgroup v2, in v1, the limit)
_LIMITS = {"pids": ("pids.max", "pids.max", PROCESSES),
           "memory": ("memory.max", "memory.limit_in_bytes", TREE_MEMORY_BYTES)}


def _cgroups() -> dict[str, Path]:
    """Fresh cgroups that cap the tree's processes and memory, {controller: folder}, for each controller this
    process can limit: cgroup v2 where the controller is delegated, or the v1 hierarchy of that name."""
    made: dict[str, Path] = {}
    unified = CGROUP_ROOT / "cgroup.subtree_control"
    for controller, (v2_file, v1_file, limit) in _LIMITS.items():
        if unified.exists():
            if controller not in unified.read_text().split():
                continue
            where, name = CGROUP_ROOT, v2_file
        elif (CGROUP_ROOT / controller / "cgroup.procs").exists():
            where, name = CGROUP_ROOT / controller, v1_file
        else:
            continue
        shared = next((p for p in made.values() if p.parent == where), None)  # v2: one cgroup, two limits
        try:
            path = shared or Path(tempfile.mkdtemp(prefix="grader-sandbox-", dir=where))
        except OSError:
            continue
        try:
            (path / name).write_text(f"{limit}\n")
            made[controller] = path
        except OSError:
            if shared is None:
                path.rmdir()
    return made


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
    open(os.path.join(os.environ["HOME"], "ok"), "w").write("x")
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
        return f"sandbox: unavailable ({reason})"
    if os.geteuid() != 0:
        limits = f"{PROCESSES} processes (the user's process limit), no memory cgroup: not root"
    else:
        found = _cgroups()
        for path in set(found.values()):
            path.rmdir()
        limits = (f"{PROCESSES} processes ({'a pids cgroup' if 'pids' in found else 'not limited: root without a pids cgroup'}), "
                  + (f"{TREE_MEMORY_BYTES // 2**30} GB for the whole tree (a memory cgroup)" if "memory" in found
                     else "no memory cgroup: each process's address space only"))
    sockets = "no AF_UNIX sockets" if platform.machine() in _SOCKET_SYSCALL else "AF_UNIX sockets open (unknown machine)"
    return (f"sandbox: no network, {sockets}, read-only file system but a {HOME_BYTES // 2**20} MB folder, "
            f"minimal /dev, own session, no capabilities, {MEMORY_BYTES // 2**30} GB address space, {limits}")


# seccomp: the audit arch and the socket syscall's number of the machines the filter knows
_SOCKET_SYSCALL = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}
_X32 = 0x40000000  # x86_64's x32 ABI numbers its syscalls from here


def deny_unix_sockets() -> bool:
    """From now on this process and its children cannot make an AF_UNIX socket (EACCES), the only way to a
    listener on the host's file system; a syscall of another ABI than the native one fails too. False where
    the filter is unknown for this machine or the kernel refuses it. Called by the worker before it imports
    the bundle; no_new_privs is set first, as the kernel requires of an unprivileged process."""
    arch = _SOCKET_SYSCALL.get(platform.machine())
    if arch is None or not sys.platform.startswith("linux"):
        return False
    audit_arch, nr_socket = arch
    ld, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
    deny, allow = 0x00050000 | 13, 0x7FFF0000  # SECCOMP_RET_ERRNO(EACCES), SECCOMP_RET_ALLOW
    program = [  # (code, jump if true, jump if false, k); seccomp_data: nr at 0, arch at 4, args[0] at 16
        (ld, 0, 0, 4), (jeq, 1, 0, audit_arch), (ret, 0, 0, deny),  # another ABI: refused
        (ld, 0, 0, 0), (jeq, 1, 0, nr_socket), (jeq, 0, 3, nr_socket | _X32),
        (ld, 0, 0, 16), (jeq, 0, 1, socket.AF_UNIX), (ret, 0, 0, deny),
        (ret, 0, 0, allow),
    ]
    code = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))  # struct sock_fprog, native alignment
    fprog_buf = ctypes.create_string_buffer(fprog, len(fprog))
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.c_void_p(ctypes.addressof(fprog_buf)), 0, 0) == 0


if __name__ == "__main__":
    print(status_line())
