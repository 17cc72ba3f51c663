"""`lejepa report` on a results folder it may not write (a colleague's, a read-only mount): a message that
says `--out DIR`, and with it the report written there, the results folder untouched (issue 16, case 8)."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from conftest import write_manifest

from evaluation.record import make_record, write_record
from experiments.cli import main
from experiments.manifest import load_manifest

STUDY = """\
name: study
defaults:
  data: {name: digits}
grid:
  seed: [0, 1]
"""
NOBODY = 65534


def _run_without_write_rights(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) as a user the folder's modes refuse: this user when not root; as root (who writes
    anywhere) a forked child that first drops to user and group 'nobody'."""
    out, err = io.StringIO(), io.StringIO()
    if os.geteuid() != 0:
        with redirect_stdout(out), redirect_stderr(err):
            return main(argv), out.getvalue(), err.getvalue()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        answer = [99, "", "child failed before main"]
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            with redirect_stdout(out), redirect_stderr(err):
                answer = [main(argv), out.getvalue(), err.getvalue()]
        except BaseException as error:  # noqa: BLE001  reported to the parent, which fails the test
            answer = [99, out.getvalue(), f"{err.getvalue()}\n{error!r}"]
        finally:
            os.write(write_end, json.dumps(answer).encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = json.loads(pipe.read())
    os.waitpid(pid, 0)
    return tuple(answer)


@pytest.fixture
def shared_folder():
    """A folder every user may enter (pytest's own tmp_path is owner-only)."""
    folder = Path(tempfile.mkdtemp(prefix="lejepa-read-only-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(folder)


def test_report_on_a_read_only_results_folder_says_out_and_writes_there(shared_folder, monkeypatch):
    path, results = write_manifest(shared_folder, STUDY), shared_folder / "results"
    previous = os.umask(0o022)  # records readable by all; only the folders' modes refuse writing
    try:
        for spec in load_manifest(path).runs:
            write_record(results, make_record(spec, "done", evaluation={"linear_top1": 0.8, "knn_top1@20": 0.7}))
    finally:
        os.umask(previous)
    # A first report, written elsewhere, imports every module the command needs (as 'nobody' the Python
    # installation under root's home may not be readable), and gives the report to compare with.
    scratch = shared_folder / "scratch"
    with redirect_stdout(io.StringIO()):
        assert main(["report", str(path), "--results", str(results), "--out", str(scratch)]) == 0
    for folder in [results, *results.rglob("*")]:
        if folder.is_dir():
            folder.chmod(0o555)
    before = {p: p.read_bytes() for p in results.rglob("*") if p.is_file()}
    elsewhere = shared_folder / "elsewhere"
    elsewhere.mkdir(mode=0o777)
    elsewhere.chmod(0o777)
    monkeypatch.setenv("MPLCONFIGDIR", str(elsewhere / ".matplotlib"))  # 'nobody' has no home

    code, out, err = _run_without_write_rights(["report", str(path), "--results", str(results)])
    assert code == 2, (out, err)
    assert (f"cannot write the report to {results / 'study'} (read-only or not creatable); give another folder "
            f"with --out DIR") in err and "Traceback" not in err

    code, out, err = _run_without_write_rights(["report", str(path), "--results", str(results),
                                                "--out", str(elsewhere)])
    assert code == 0, (out, err)
    assert "2 of 2 runs have records" in out
    assert (elsewhere / "report.md").read_text() == (scratch / "report.md").read_text()
    assert {p: p.read_bytes() for p in results.rglob("*") if p.is_file()} == before
