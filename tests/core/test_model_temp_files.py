"""Concurrent writers: cleaning up stray temp files never touches a save in progress in
another process; only temp files whose writer is provably gone (or very old) are removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ponyclassifier.core import modelfile
from ponyclassifier.core.modelfile import cleanup_stale_temp_files, load_model_file

REPO_ROOT = Path(modelfile.__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))

pytestmark = pytest.mark.skipif(os.name != "posix", reason="flock and pids as POSIX has them")

# A saver that, once its temp file exists (and is locked), waits for the parent's go-ahead
# before writing a byte: the other process's cleanup runs while the save is in progress,
# whatever the speed of the machine.
SLOW_SAVER = r"""
import os, sys, time, torch
from pathlib import Path
from ponyclassifier.core import modelfile

go = Path(sys.argv[2])
real_write = os.write
def waiting_write(fd, data):
    deadline = time.monotonic() + 300
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("never told to go on")
        time.sleep(0.01)
    return real_write(fd, data)
os.write = waiting_write
tensors = {f"w{i}": torch.full((256, 1024), float(i)) for i in range(20)}  # 20 MiB: several writes
modelfile.save_model_file(sys.argv[1], tensors, {"classes": ["slow"]})
print("saved")
"""

CLEANER = r"""
import sys
from ponyclassifier.core.modelfile import cleanup_stale_temp_files
print(len(cleanup_stale_temp_files(sys.argv[1])))
"""


def temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.ponytmp"))


def wait_for(condition, child, what: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while not condition():
        if child is not None and child.poll() is not None:
            pytest.fail(f"child exited before {what}: {child.stderr.read()[-2000:]}")
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.01)


def test_cleanup_in_another_process_spares_a_save_in_progress(tmp_path):
    path, go = tmp_path / "m.pony", tmp_path / "go"
    saver = subprocess.Popen([sys.executable, "-c", SLOW_SAVER, str(path), str(go)], env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: temps(tmp_path), saver, "the temp file")
        [temp] = temps(tmp_path)
        assert f".p{saver.pid}." in temp.name
        # a second process starting in the same folder (as `train` does) cleans up
        cleaner = subprocess.run([sys.executable, "-c", CLEANER, str(tmp_path)], env=ENV, capture_output=True,
                                 text=True, timeout=300)
        assert cleaner.returncode == 0, cleaner.stderr
        assert cleaner.stdout.strip() == "0" and temps(tmp_path) == [temp]
        assert cleanup_stale_temp_files(tmp_path) == []  # and from this process too
        go.touch()
        out, err = saver.communicate(timeout=300)
    finally:
        if saver.poll() is None:
            saver.kill()
            saver.wait()
    assert saver.returncode == 0 and out.strip() == "saved", err[-2000:]
    meta, tensors = load_model_file(path)
    assert meta["classes"] == ["slow"] and len(tensors) == 20 and temps(tmp_path) == []


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_the_temp_file_of_a_killed_saver_is_removed(tmp_path):
    path, go = tmp_path / "m.pony", tmp_path / "go"
    saver = subprocess.Popen([sys.executable, "-c", SLOW_SAVER, str(path), str(go)], env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: temps(tmp_path), saver, "the temp file")
    finally:
        saver.kill()
        saver.communicate(timeout=60)
    stray = temps(tmp_path)
    assert len(stray) == 1 and not path.exists()
    assert cleanup_stale_temp_files(tmp_path, min_age_s=3600) == []  # min_age_s still spares young files
    assert cleanup_stale_temp_files(tmp_path) == stray and temps(tmp_path) == []


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def make_temp(folder: Path, pid: int | None, age_s: float = 0.0) -> Path:
    token = os.urandom(8).hex()
    name = f".m.pony.{token}.p{pid}.ponytmp" if pid is not None else f".m.pony.{token}.ponytmp"
    temp = folder / name
    temp.write_bytes(b"partial")
    if age_s:
        then = time.time() - age_s
        os.utime(temp, (then, then))
    return temp


def test_a_temp_whose_writer_may_still_run_is_kept_until_it_is_very_old(tmp_path):
    alive = make_temp(tmp_path, os.getpid())  # a live pid, lock free: e.g. between create and lock
    legacy = make_temp(tmp_path, None)  # an older version's name: nothing can be proven
    gone = make_temp(tmp_path, dead_pid())
    assert cleanup_stale_temp_files(tmp_path) == [gone]
    assert temps(tmp_path) == sorted([alive, legacy])
    day = modelfile.ABANDONED_AFTER_S
    for temp in (alive, legacy):
        os.utime(temp, (time.time() - day - 60,) * 2)
    assert sorted(cleanup_stale_temp_files(tmp_path)) == sorted([alive, legacy])
    assert temps(tmp_path) == []


LOCK_HOLDER = r"""
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_locked_temp_is_never_removed_even_old_and_naming_a_dead_pid(tmp_path):
    temp = make_temp(tmp_path, dead_pid(), age_s=modelfile.ABANDONED_AFTER_S * 10)
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(temp)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert cleanup_stale_temp_files(tmp_path) == [] and temp.exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert cleanup_stale_temp_files(tmp_path) == [temp] and not temp.exists()


def test_cleanup_never_follows_or_removes_a_symlink(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep")
    link = tmp_path / f".m.pony.{'0' * 16}.p{dead_pid()}.ponytmp"
    link.symlink_to(target)
    old = time.time() - modelfile.ABANDONED_AFTER_S * 10
    os.utime(target, (old, old))
    assert cleanup_stale_temp_files(tmp_path) == []
    assert link.is_symlink() and target.read_text() == "keep"


def test_names_that_are_not_ours_are_left_alone(tmp_path):
    others = ["notes.ponytmp", f".m.pony.NOTHEX0000000000.p{dead_pid()}.ponytmp", ".m.pony.0123.p1.ponytmp",
              f".m.pony.{'a' * 16}.pXYZ.ponytmp", "m.pony"]
    for name in others:
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (0, 0))
    assert cleanup_stale_temp_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)
