"""manifest.json pins every committed data file and adapter by sha256; `records check` verifies them."""

import json
import shutil
import subprocess
import sys

import pytest

from homework import manifest, questions

REPO = manifest.REPO


def test_every_committed_data_file_and_adapter_is_pinned_with_its_command():
    files = manifest.entries()
    data = {p.relative_to(REPO).as_posix() for p in (REPO / "data").glob("*.json")}
    assert data <= set(files), f"not pinned: {sorted(data - set(files))}"
    for kind in ("sft", "rft"):
        assert f"homework/{kind}_model/adapter_model.safetensors" in files
    for name, entry in files.items():
        assert len(entry["sha256"]) == 64 and entry["command"].strip(), name
        assert entry.get("commit"), f"{name}: no commit it was made at"


def test_the_committed_files_match_their_hashes():
    assert manifest.mismatches() == []


@pytest.fixture()
def copy_of_the_repo(tmp_path, monkeypatch):
    """manifest.json and the data files in a folder of their own, the manifest module pointed at it."""
    shutil.copy(REPO / "manifest.json", tmp_path / "manifest.json")
    for name in manifest.entries():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    monkeypatch.setattr(manifest, "REPO", tmp_path)
    monkeypatch.setattr(manifest, "MANIFEST", tmp_path / "manifest.json")
    return tmp_path


def test_one_changed_byte_is_one_mismatch_line(copy_of_the_repo):
    path = copy_of_the_repo / "data" / "valid.json"
    raw = bytearray(path.read_bytes())
    raw[100] = ord("7") if raw[100] != ord("7") else ord("8")
    path.write_bytes(bytes(raw))
    (copy_of_the_repo / "data" / "people.json").unlink()
    assert [line.split(":")[0] for line in manifest.mismatches()] == ["data/people.json", "data/valid.json"]


def test_pin_records_the_hash_command_and_commit(copy_of_the_repo):
    path = copy_of_the_repo / "data" / "extra.json"
    path.write_text("[]\n")
    assert manifest.pin([path], "made by hand") == ["data/extra.json"]
    entry = manifest.entries()["data/extra.json"]
    assert entry["sha256"] == manifest.digest(b"[]\n") and entry["command"] == "made by hand"
    assert manifest.mismatches() == []


def test_save_rows_refuses_to_change_a_pinned_file_unless_asked(copy_of_the_repo):
    path = copy_of_the_repo / "data" / "valid_same_unit.json"
    rows = json.loads(path.read_text())
    with pytest.raises(questions.DataFileError, match="pinned in manifest.json"):
        questions.save_rows(rows[:-1], path, overwrite=False)
    questions.save_rows(rows, path)  # the same rows, the same bytes: no change, no refusal
    with pytest.raises(questions.DataFileError, match="0 rows"):
        questions.save_rows([], copy_of_the_repo / "data" / "new.json")
    questions.save_rows([], copy_of_the_repo / "data" / "none.json", allow_empty=True)  # a new file may hold none
    with pytest.raises(questions.DataFileError, match="0 rows"):  # but never empties one that is there
        questions.save_rows([], path, overwrite=True, allow_empty=True)
    with pytest.raises(questions.DataFileError, match="3 rows, 5 asked"):
        questions.save_rows(rows[:3], copy_of_the_repo / "data" / "new.json", expect=5)
    questions.save_rows(rows[:-1], path, overwrite=True)
    assert manifest.mismatches() == ["data/valid_same_unit.json: " + manifest.mismatches()[0].split(": ", 1)[1]]


def test_records_check_command_exits_1_with_a_line_per_mismatch_and_0_when_clean():
    clean = subprocess.run([sys.executable, "-m", "homework.records", "check"], capture_output=True, text=True,
                           cwd=REPO)
    assert clean.returncode == 0 and clean.stdout.strip().endswith("pinned files match manifest.json")
    assert "torch" not in clean.stderr
    script = ("import sys; from homework import manifest, records; manifest.mismatches = lambda: ['a: x', 'b: y'];"
              "sys.argv = ['records', 'check']; from homework.cli import run_cli; run_cli({'check': records.check})")
    bad = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 1 and bad.stdout.splitlines() == ["a: x", "b: y"]


def test_records_show_reads_a_card_without_torch():
    script = "import sys; from homework import records; records.show('homework/sft_model'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "False", out.stderr
