"""All-or-nothing results: staging, swapping, recovery, real SIGINT/SIGTERM/SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from planner import staging
from planner.errors import PlannerError

ROOT = Path(__file__).resolve().parents[1]

# A child process that stages a result of five files and waits for a signal at
# the moment named on its command line ("never" to run through).
CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from planner import staging

    out, moment = Path(sys.argv[1]), sys.argv[2]

    def wait(now):
        if now == moment:
            print("READY", flush=True)
            # signals are held back during the swap: sleep long enough to receive one
            time.sleep(2 if now in {"built", "aside", "swapped"} else 60)

    staging.test_hook = wait
    out = staging.check_output_dir(out)
    with staging.replace_directory(out) as stage:
        wait("before_writing")
        for index in range(5):
            (stage / f"part{index}.csv").write_text("new," * 1000)
            if index == 2:
                wait("mid_writing")
        (stage / "run.json").write_text('{"run": "new"}')
    print("DONE", flush=True)
""")


def old_result(out: Path) -> dict[str, bytes]:
    out.mkdir(parents=True)
    (out / "run.json").write_text('{"run": "old"}')
    (out / "summary.csv").write_text("old,1\n")
    (out / "sites.csv").write_text("old site\n")
    return snapshot(out)


def snapshot(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(out.iterdir())}


def hidden_beside(out: Path) -> list[str]:
    return sorted(path.name for path in out.parent.iterdir() if path.name.startswith("."))


def run_child(out: Path, moment: str, signum: int | None) -> int:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out), moment],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=ROOT)
    try:
        if signum is not None:
            assert child.stdout.readline().strip() == "READY"
            child.send_signal(signum)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode


def is_new_result(out: Path) -> bool:
    files = snapshot(out)
    return (sorted(files) == ["part0.csv", "part1.csv", "part2.csv", "part3.csv", "part4.csv",
                              "run.json"] and files["run.json"] == b'{"run": "new"}')


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(("moment", "outcome"), [
    ("before_writing", "old"), ("mid_writing", "old"),
    ("built", "new"), ("aside", "new"), ("swapped", "new"),
])
def test_signal_leaves_old_or_new_result_and_no_temporary_folder(tmp_path, moment, outcome,
                                                                 signum):
    out = tmp_path / "results"
    before = old_result(out)
    code = run_child(out, moment, signum)
    assert code != 0  # the signal was delivered (perhaps after the swap)
    if outcome == "old":
        assert snapshot(out) == before
    else:
        assert is_new_result(out)
    assert hidden_beside(out) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_on_a_first_run_leaves_nothing(tmp_path, signum):
    out = tmp_path / "results"
    run_child(out, "mid_writing", signum)
    assert list(tmp_path.iterdir()) == []


def test_uninterrupted_run_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "results"
    old_result(out)
    assert run_child(out, "never", None) == 0
    assert is_new_result(out)  # sites.csv of the earlier run is gone
    assert hidden_beside(out) == []


@pytest.mark.parametrize("moment", ["mid_writing", "aside", "swapped"])
def test_hard_kill_is_recovered_before_the_next_run(tmp_path, moment):
    out = tmp_path / "results"
    before = old_result(out)
    run_child(out, moment, signal.SIGKILL)
    assert hidden_beside(out)  # a hard kill cannot clean up ...
    staging.check_output_dir(out)  # ... the next run does, before its work
    if moment == "swapped":
        assert is_new_result(out)
    else:
        assert snapshot(out) == before
    assert hidden_beside(out) == []


def test_exception_removes_the_stage_and_keeps_the_earlier_result(tmp_path):
    out = tmp_path / "results"
    before = old_result(out)
    with pytest.raises(RuntimeError), staging.replace_directory(out) as stage:
        (stage / "coverage.gpkg").write_text("half")
        raise RuntimeError("boom")
    assert snapshot(out) == before
    assert hidden_beside(out) == []


def test_handlers_are_restored(tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with staging.replace_directory(tmp_path / "a") as stage:
        assert signal.getsignal(signal.SIGINT) != before[0]
        (stage / "run.json").write_text("{}")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_replace_directory_in_a_thread_does_not_touch_handlers(tmp_path):
    import threading

    errors = []

    def work():
        try:
            with staging.replace_directory(tmp_path / "t") as stage:
                (stage / "run.json").write_text("{}")
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == [] and (tmp_path / "t" / "run.json").exists()


def test_recover_leaves_folders_of_running_processes(tmp_path):
    out = tmp_path / "results"
    live = staging.hidden_path(out, staging.TEMP_MARK, pid=os.getppid())
    live.mkdir()
    staging.recover(out)
    assert live.exists()


def test_replace_file(tmp_path):
    target = tmp_path / "map.html"
    target.write_text("old")
    with pytest.raises(RuntimeError), staging.replace_file(target) as stage:
        stage.write_text("half")
        raise RuntimeError
    assert target.read_text() == "old" and hidden_beside(target) == []
    with staging.replace_file(target) as stage:
        stage.write_text("new")
    assert target.read_text() == "new" and hidden_beside(target) == []


# ----------------------------------------------------------------------------- check_output_dir


def test_check_output_dir_accepts_new_empty_and_result_folders(tmp_path):
    assert staging.check_output_dir(tmp_path / "new" / "deeper" / "out") \
        == tmp_path / "new" / "deeper" / "out"
    assert not (tmp_path / "new").exists()  # the probe's parents are removed again
    (tmp_path / "empty").mkdir()
    staging.check_output_dir(tmp_path / "empty")
    old_result(tmp_path / "earlier")
    staging.check_output_dir(tmp_path / "earlier")


def test_symlinked_out_replaces_the_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "real"
    old_result(target)
    link = tmp_path / "link"
    link.symlink_to(target)
    out = staging.check_output_dir(link)
    with staging.replace_directory(out) as stage:
        (stage / "run.json").write_text("{}")
    assert link.is_symlink() and (link / "run.json").read_text() == "{}"
    assert not (link / "sites.csv").exists()


@pytest.mark.parametrize(("make", "expected"), [
    ("file", "is an existing file"),
    ("foreign", "holds other files"),
    ("long", "name is too long"),
    ("parent_file", "is a file, not a folder"),
    ("proc", "cannot write beside it"),
    ("root", "cannot replace this folder"),
    ("input_inside", "contains the input"),
])
def test_check_output_dir_refuses(tmp_path, make, expected):
    inputs = ()
    out = tmp_path / "out"
    if make == "file":
        out.write_text("not a folder")
    elif make == "foreign":
        out.mkdir()
        (out / "thesis.docx").write_text("precious")
    elif make == "long":
        out = tmp_path / ("长" * 80)  # 240 bytes: fits alone, not with the suffix
    elif make == "parent_file":
        (tmp_path / "plain").write_text("x")
        out = tmp_path / "plain" / "out"
    elif make == "proc":
        out = Path("/proc/planner-no-such-dir/out")
    elif make == "root":
        out = Path("/")
    elif make == "input_inside":
        old_result(out)
        (out / "communities.geojson").write_text("{}")
        inputs = (out / "communities.geojson",)
    with pytest.raises(PlannerError, match=expected) as caught:
        staging.check_output_dir(out, inputs=inputs)
    message = str(caught.value)
    assert message.startswith("--out ") and "\n" not in message
    if make == "foreign":
        assert (out / "thesis.docx").read_text() == "precious"


def test_check_output_file(tmp_path):
    assert staging.check_output_file(tmp_path / "map.html") == tmp_path / "map.html"
    with pytest.raises(PlannerError, match="is a folder"):
        staging.check_output_file(tmp_path)
