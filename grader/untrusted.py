"""Everything the grader reads from a bundle or its worker, bounded and checked before use: the zip, the
worker's run in the sandbox and its result line, and the values in that result. Any violation is a reason
in one line (a BundleError for the bundle as a whole, a reason for zero for one case); nothing here scores.
"""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from . import sandbox

OUTPUT_LIMIT = sandbox.FILE_BYTES  # bytes of stdout or stderr read from a case; the sandbox stops it there
# what an untrusted bundle or result may be before the grader reads it; past any bound, that case scores 0
ZIP_ENTRIES = 2_000
ZIP_BYTES = 256 * 2**20  # uncompressed, all entries together (the honest bundle: ~20 MB)
ZIP_RATIO = 200  # uncompressed over compressed, per entry larger than a megabyte
JSON_DEPTH = 8  # nesting of the result line (the honest one: 2)
# one generation text (the honest one: 32 tokens, ~150 characters) and one CoT prompt (~400 tokens, ~1,300
# characters), in characters before tokenizing, then in the base model's tokens: the texts are scored in one
# padded batch, so one long text would make the logits of every row as long
GENERATION_BOUND = (1_000, 96)
PROMPT_BOUND = (8_000, 1_024)
WORKER = Path(__file__).resolve().parent / "worker.py"


class BundleError(ValueError):
    """A bundle that cannot be graded: not a zip, unsafe entries, no package."""


def safe_extract(zip_path: Path, target: Path) -> Path:
    """Extract an untrusted zip into target; refuse absolute paths, '..', links, special files, overlapping
    entries and bombs (entry count, total size, ratio), all checked before a byte is written, and each entry
    cut off at the size it declares while it is written."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as err:
        raise BundleError(f"{zip_path}: not a readable zip ({err})") from None
    root = target.resolve()
    with archive:
        infos = archive.infolist()
        _check_zip_bounds(zip_path, infos)
        for info in infos:
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip records no file type
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise BundleError(f"{zip_path}: refusing link or special file {info.filename!r}")
            dest = (root / info.filename).resolve()
            if os.path.isabs(info.filename) or ".." in Path(info.filename).parts or not dest.is_relative_to(root):
                raise BundleError(f"{zip_path}: refusing entry outside the bundle {info.filename!r}")
        try:
            for info in infos:
                _extract_entry(archive, info, root)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as err:
            raise BundleError(f"{zip_path}: corrupt zip ({err})") from None
    if not (root / "homework" / "__init__.py").exists():
        raise BundleError(f"{zip_path}: no homework/ package at the top of the bundle")
    return root


def _check_zip_bounds(zip_path: Path, infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > ZIP_ENTRIES:
        raise BundleError(f"{zip_path}: {len(infos)} entries, over {ZIP_ENTRIES}")
    total = sum(info.file_size for info in infos)
    if total > ZIP_BYTES:
        raise BundleError(f"{zip_path}: {total / 2**20:.0f} MB uncompressed, over {ZIP_BYTES // 2**20} MB")
    for info in infos:
        if info.file_size > 2**20 and info.file_size > ZIP_RATIO * max(info.compress_size, 1):
            raise BundleError(f"{zip_path}: {info.filename!r} expands {info.file_size / max(info.compress_size, 1):.0f}"
                              f"-fold, over {ZIP_RATIO}")
    # each entry's data must lie before the next entry's header: overlapping entries expand one stored byte
    # range many times over, whatever each entry declares
    spans = sorted((info.header_offset, info.header_offset + 30 + len(info.filename.encode()) + info.compress_size,
                    info.filename) for info in infos)
    for (_, end, name), (start, _, _) in zip(spans, spans[1:]):
        if end > start:
            raise BundleError(f"{zip_path}: entry {name!r} overlaps the next one")


def _extract_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path) -> None:
    dest = root / info.filename
    if info.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with archive.open(info) as src, open(dest, "wb") as out:
        while chunk := src.read(2**20):
            written += len(chunk)
            if written > info.file_size:  # zipfile checks the CRC at the end only; stop at the declared size
                raise ValueError(f"{info.filename!r} holds more than the {info.file_size} bytes it declares")
            out.write(chunk)


def run_worker(package_parent: Path, case: str, request: dict, timeout: float) -> tuple[dict | None, str]:
    """(the worker's result, "") or (None, why there is none). The worker runs in the sandbox where it can."""
    unavailable = sandbox.probe()
    box = sandbox.Sandbox(cpu_seconds=int(timeout * (os.cpu_count() or 1)) + 60)
    try:
        request_path = box.dir / "request.json"
        request_path.write_text(json.dumps(request))
        argv = [sys.executable, str(WORKER), str(package_parent), case, str(request_path)]
        env = box.env()
        if not unavailable:
            argv = box.argv(argv)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                run = subprocess.run(argv, cwd=package_parent, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     timeout=timeout, env=env)
            except subprocess.TimeoutExpired:
                return None, f"timed out after {timeout:.0f} s"
            stdout, stderr = _read_capped(out), _read_capped(err)
    finally:
        box.close()
    return result_of(run.returncode, stdout, stderr)


def _read_capped(f) -> str:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    text = f.read(OUTPUT_LIMIT).decode("utf-8", "replace")
    return text + ("\n[output cut]" if size > OUTPUT_LIMIT else "")


def result_of(returncode: int, stdout: str, stderr: str) -> tuple[dict | None, str]:
    """The one result line of a finished worker; any other shape of output is a reason for zero."""
    if len(stdout) >= OUTPUT_LIMIT:
        return None, f"wrote over {OUTPUT_LIMIT // 2**20} MB to stdout"
    lines = [line for line in stdout.splitlines() if line.startswith("GRADER_RESULT ")]
    if len(lines) > 1:
        return None, f"{len(lines)} result lines on stdout: output forged"
    if returncode != 0 or not lines:
        last = (stderr.strip().splitlines() or [f"no result, exit code {returncode}"])[-1]
        return None, f"failed (exit code {returncode}): {last[:200]}"
    text = lines[0][len("GRADER_RESULT "):]
    if _nesting(text) > JSON_DEPTH:
        return None, f"result line nests deeper than {JSON_DEPTH}"
    try:
        result = json.loads(text)
    except (ValueError, RecursionError):
        return None, "result line is not JSON"
    return (result, "") if isinstance(result, dict) else (None, "result line is not an object")


def _nesting(text: str) -> int:
    """The deepest bracket nesting of a JSON text, counted without parsing it (brackets in strings count too,
    which only errs on the side of refusing)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def strings(value, n: int, bound: tuple[int, int], tokenizer) -> tuple[list[str] | None, str]:
    """(n strings within bound = (characters, tokens) each, "") or (None, why not)."""
    if not (isinstance(value, list) and len(value) == n and all(isinstance(v, str) for v in value)):
        return None, f"no {n} texts"
    chars, tokens = bound
    longest = max((len(v) for v in value), default=0)
    if longest > chars:
        return None, f"a text of {longest} characters, over {chars}"
    longest = max((len(ids) for ids in tokenizer(value, add_special_tokens=False).input_ids), default=0)
    if longest > tokens:
        return None, f"a text of {longest} tokens, over {tokens}"
    return value, ""


def floats(value, n: int) -> list[float] | None:
    if not isinstance(value, list) or len(value) != n:
        return None
    out = []
    for v in value:
        if v is None:
            out.append(math.nan)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
        else:
            return None
    return out
