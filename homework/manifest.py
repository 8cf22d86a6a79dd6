"""The committed artifacts pinned by hash: every data file and adapter weight file, with the command that made it
and the commit it was made at (manifest.json at the repository root).

    python -m homework.records check    # exit 0 when every pinned file matches; one line per mismatch otherwise
    python -m homework.records pin data/valid_natural.json --command "python -m homework.questions write ..."

Tests check these hashes and the properties of the files (tests/test_manifest.py), not that today's code
re-creates yesterday's bytes: a generator may change while the benchmark it once wrote stays as it is.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "manifest.json"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def name(path: str | Path) -> str:
    """A path as the manifest keys it: relative to the repository, with forward slashes."""
    resolved = Path(path).resolve()
    return resolved.relative_to(REPO).as_posix() if resolved.is_relative_to(REPO) else str(path)


def entries() -> dict[str, dict]:
    return json.loads(MANIFEST.read_text())["files"] if MANIFEST.exists() else {}


def pinned(path: str | Path) -> dict | None:
    """The manifest's entry for `path` (sha256, command, commit), or None when it pins no such file."""
    return entries().get(name(path))


def mismatches() -> list[str]:
    """One line per pinned file that is missing or whose bytes differ from its hash."""
    out = []
    for key, entry in entries().items():
        path = REPO / key
        if not path.is_file():
            out.append(f"{key}: missing")
        elif (got := digest(path.read_bytes())) != entry["sha256"]:
            out.append(f"{key}: sha256 {got[:12]} is not the pinned {entry['sha256'][:12]} "
                       f"(made by: {entry['command']})")
    return out


def _commit() -> str:
    """The commit the working tree stands on (the code that made a file), or "" outside git."""
    try:
        return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def pin(paths: list[str | Path], command: str) -> list[str]:
    """Record each file's current hash with `command` and the commit it was made at; returns the keys pinned."""
    files = entries()
    commit = _commit()
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file to pin")
        files[name(path)] = {"sha256": digest(Path(path).read_bytes()), "command": command, "commit": commit}
    MANIFEST.write_text(json.dumps({"files": dict(sorted(files.items()))}, indent=1) + "\n")
    return [name(p) for p in paths]
