"""Files we did not write, at the root (the one decoder and the listings): what is not a regular
file is never opened in a way that can block, decoding is bounded in time (JPEG scans) and in
memory (per file and in total), names that are not valid UTF-8 are left out with their reason,
and a folder without pictures says why."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from PIL import Image

from ponyclassifier.core import images
from ponyclassifier.core.folders import iter_class_file_paths, list_class_folders
from ponyclassifier.core.images import (
    MAX_JPEG_SCANS,
    ImageError,
    decode_image,
    display_path,
    is_candidate_file,
    jpeg_scan_count,
    name_problem,
)
from ponyclassifier.core.predict import expand_paths, list_inputs

from ..conftest import make_shapes_dataset

POSIX = os.name == "posix"
BAD = b"\xff\xfe.png"  # not valid UTF-8: Python sees it as "\udcff\udcfe.png"
ROOT = Path(__file__).resolve().parents[2]


def run_py(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter with this checkout first on the path; a hang is a
    failure (the timeout only a hang would reach), not a stuck test run."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                       timeout=timeout, env=env)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    return r


def run_cli(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "ponyclassifier", *map(os.fsdecode, args)], capture_output=True,
                          timeout=timeout, env=env)


# ------------------------------------------------------------- not regular files


@pytest.mark.skipif(not POSIX or not hasattr(os, "mkfifo"), reason="named pipes and sockets are POSIX")
def test_pipes_sockets_devices_folders_and_links_to_them_are_refused_without_blocking(tmp_path):
    """A named pipe named x.jpg (in a class folder, given to predict, or through a symlink)
    would block an open for ever: the scan, predict and decode all refuse it with its kind.
    Run in a child so that a regression is a timeout, not a hung test run."""
    data = make_shapes_dataset(tmp_path / "data", per_class=3, size=16)
    os.mkfifo(data / "circle" / "x.jpg")
    os.symlink(data / "circle" / "x.jpg", data / "square" / "link_to_pipe.png")
    os.mkdir(data / "square" / "folder.png")  # os.walk lists it as a folder: searched, not decoded
    os.symlink("/dev/zero", data / "triangle" / "zero.jpg")
    r = run_py(f"""
        import json, os, socket
        from ponyclassifier.core.dataset import scan_dataset
        from ponyclassifier.core.images import ImageError, decode_image
        data = {str(data)!r}
        os.chdir(os.path.join(data, "triangle"))
        s = socket.socket(socket.AF_UNIX); s.bind("sock.png")  # relative: socket paths are short
        report = scan_dataset(data, image_size=16, workers=4)
        reasons = {{}}
        for p in ("circle/x.jpg", "square/link_to_pipe.png", "square/folder.png", "triangle/zero.jpg",
                  "triangle/sock.png"):
            try:
                decode_image(os.path.join(data, p))
            except ImageError as e:
                reasons[p] = e.reason
        print(json.dumps({{"samples": len(report.samples),
                          "skipped": {{os.path.relpath(k.path, data): k.reason for k in report.skipped}},
                          "decode": reasons}}))
    """, timeout=300)
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["samples"] == 9  # every real picture scanned
    assert out["skipped"] == {
        "circle/x.jpg": "cannot read file: not a regular file (a named pipe)",
        "square/link_to_pipe.png": "cannot read file: not a regular file (a named pipe)",
        "triangle/sock.png": "cannot read file: not a regular file (a socket)",
        "triangle/zero.jpg": "cannot read file: not a regular file (a character device)",
    }
    assert out["decode"] == out["skipped"] | {"square/folder.png": "cannot read file: not a regular file (a folder)"}


@pytest.mark.skipif(not POSIX or not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_predict_given_a_pipe_goes_on_with_the_rest(tmp_path, trained_shapes):
    m = trained_shapes()
    pipe = tmp_path / "x.jpg"
    os.mkfifo(pipe)
    good = sorted((m.data / "circle").iterdir())[:2]
    r = run_cli("predict", m.path, good[0], pipe, good[1], "--device", "cpu", timeout=300)
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 0 and len(lines) == 3, (r.stdout, r.stderr)
    assert lines[1] == f"{pipe}: ERROR cannot read file: not a regular file (a named pipe)"
    assert lines[0].startswith(f"{good[0]}: ") and lines[2].startswith(f"{good[1]}: ")


def test_regular_files_open_and_the_open_file_is_checked(tmp_path):
    """The descriptor decode_image reads is the regular file it checked (fstat after the
    non-blocking open), and a path that vanished says so."""
    p = tmp_path / "a.png"
    Image.new("RGB", (3, 2), (1, 2, 3)).save(p)
    with images.open_regular_file(p) as fp:
        assert os.path.samestat(os.fstat(fp.fileno()), os.stat(p))
        assert fp.read(8) == b"\x89PNG\r\n\x1a\n"
    assert decode_image(p).image.getpixel((0, 0)) == (1, 2, 3)
    with pytest.raises(ImageError, match="file not found"):
        images.open_regular_file(tmp_path / "gone.png")
    with pytest.raises(ImageError, match="not a valid path"):
        decode_image(str(tmp_path / "nul\0.png"))


# --------------------------------------------------------------- bounded time


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """Each segment after SOI as (marker, its bytes; an SOS with its entropy-coded data)."""
    out, pos = [], 2
    while pos < len(data):
        m = data[pos + 1]
        if m == 0xD9:
            out.append((m, data[pos:pos + 2]))
            break
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if m == 0xDA:
            while not (data[end] == 0xFF and data[end + 1] not in (0x00, *range(0xD0, 0xD8))):
                end += 1
        out.append((m, data[pos:end]))
        pos = end
    return out


def progressive(size=(64, 48), mode="L", **kw) -> bytes:
    b = io.BytesIO()
    Image.new(mode, size, 128).save(b, "JPEG", progressive=True, **kw)
    return b.getvalue()


def many_scans(scans: int, size=(2048, 2048)) -> bytes:
    """A small progressive JPEG with ``scans`` scans: one refinement scan (with its tables)
    repeated. libjpeg decodes every one over the whole image: 2,000 of them at 2048 x 2048
    (94 KB) took 5.8 s in Pillow here, 3,000 at 4096 x 4096 over a minute."""
    groups, cur = [], b""
    for m, s in jpeg_segments(progressive(size)):
        cur += s
        if m in (0xDA, 0xD9):
            groups.append(cur)
            cur = b""
    n = len(groups) - 1
    return b"\xff\xd8" + b"".join(groups[:-1]) + groups[3] * (scans - n) + groups[-1]


def test_real_jpegs_count_their_scans():
    """libjpeg's progressive script: 10 scans for colour, 6 for grey; baseline: 1. An EXIF
    block, a comment holding SOS bytes and a second frame after EOI (MPO) are not scans."""
    assert jpeg_scan_count(io.BytesIO(progressive(mode="RGB"))) == 10
    assert jpeg_scan_count(io.BytesIO(progressive(mode="L"))) == 6
    b = io.BytesIO()
    Image.new("RGB", (40, 30), (9, 9, 9)).save(b, "JPEG")
    baseline = b.getvalue()
    assert jpeg_scan_count(io.BytesIO(baseline)) == 1
    fake_sos = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" * 50
    comment = b"\xff\xfe" + (len(fake_sos) + 2).to_bytes(2, "big") + fake_sos
    with_comment = baseline[:2] + comment + baseline[2:]
    assert jpeg_scan_count(io.BytesIO(with_comment)) == 1
    assert decode_image(with_comment).image.size == (40, 30)
    assert jpeg_scan_count(io.BytesIO(baseline + progressive(mode="RGB"))) == 1  # counting stops at EOI
    # the count is the same however the file is read in chunks (markers split across reads)
    hostile = many_scans(150, size=(64, 64))
    for data in (progressive(mode="RGB"), with_comment, hostile):
        whole = jpeg_scan_count(io.BytesIO(data), limit=10**6)
        assert all(jpeg_scan_count(io.BytesIO(data), limit=10**6, chunk=c) == whole for c in (1, 2, 3, 5, 7, 64))
    assert jpeg_scan_count(io.BytesIO(hostile), limit=10**6) == 150
    f = io.BytesIO(hostile)
    f.seek(17)
    jpeg_scan_count(f)
    assert f.tell() == 17  # the position is put back


def test_a_jpeg_with_thousands_of_scans_is_refused_before_decoding():
    data = many_scans(3000)
    assert len(data) < 200_000  # small on disk
    assert jpeg_scan_count(io.BytesIO(data)) == MAX_JPEG_SCANS + 1  # counting stops past the limit
    assert jpeg_scan_count(io.BytesIO(data), limit=10**6) == 3000
    result = {}

    def decode():
        try:
            decode_image(data, path_hint="scans.jpg")
        except ImageError as e:
            result["error"] = e

    t = threading.Thread(target=decode, daemon=True)  # only a hang would reach the join timeout
    t.start()
    t.join(120)
    assert not t.is_alive()
    e = result["error"]
    assert e.reason.startswith(f"too many JPEG scans: more than {MAX_JPEG_SCANS}") and e.path == "scans.jpg"
    # at the limit, a file still decodes
    assert decode_image(many_scans(MAX_JPEG_SCANS, size=(64, 64))).image.size == (64, 64)


# ------------------------------------------------------------- bounded memory


def test_decode_budget_holds_decodes_back_and_lets_one_alone_through():
    budget = images._DecodeBudget(100)
    inside, most = 0, 0
    lock = threading.Lock()
    gate = threading.Barrier(6)

    def work(amount):
        nonlocal inside, most
        gate.wait()
        for _ in range(20):
            with budget.reserve(amount):
                with lock:
                    inside += amount
                    most = max(most, inside)
                threading.Event().wait(0.001)
                with lock:
                    inside -= amount

    threads = [threading.Thread(target=work, args=(a,)) for a in (30, 30, 30, 40, 60, 250)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert budget.used == 0
    assert most <= 250  # the oversized one ran alone; the others never passed 100 together
    assert budget.peak <= 250


def test_decode_budget_serves_in_order_so_a_big_picture_is_not_passed_for_ever():
    """First come, first served: once a big reservation waits, the small ones that come after
    wait behind it (before, a stream of small decodes could keep a big one waiting)."""
    budget = images._DecodeBudget(100)
    order, holding, started = [], threading.Event(), threading.Event()

    def small_holder():
        with budget.reserve(30):
            holding.set()
            started.wait(10)

    def big():
        with budget.reserve(80):
            order.append("big")

    def later_small():
        with budget.reserve(30):
            order.append("small")

    h = threading.Thread(target=small_holder)
    h.start()
    holding.wait(10)
    b = threading.Thread(target=big)
    b.start()
    while not budget._queue:  # the big one is waiting (30 + 80 > 100)
        threading.Event().wait(0.001)
    s = threading.Thread(target=later_small)
    s.start()
    threading.Event().wait(0.05)
    assert order == []  # 30 + 30 would fit, but the small one waits its turn behind the big one
    started.set()
    for t in (h, b, s):
        t.join(30)
    assert order == ["big", "small"] and budget.used == 0 and not budget._queue


def test_a_progressive_jpeg_decoded_small_is_charged_for_its_whole_coefficients(tmp_path):
    big = tmp_path / "prog.jpg"
    Image.new("RGB", (2000, 1500), (90, 120, 200)).save(big, progressive=True, quality=80)
    with Image.open(big) as im:
        full = im.size
        im.draft("RGB", (100, 100))
        assert im.size[0] < full[0]
        cost = images._decode_cost(im, full)
        assert cost >= full[0] * full[1] * 3 * 2  # libjpeg's coefficient buffer, at full size
        assert images._decode_cost(im) < full[0] * full[1]  # what the drafted pixels alone would say
    baseline = tmp_path / "base.jpg"
    Image.new("RGB", (2000, 1500), (90, 120, 200)).save(baseline, quality=80)
    with Image.open(baseline) as im:
        im.draft("RGB", (100, 100))
        assert images._decode_cost(im, full) < full[0] * full[1]  # a baseline JPEG streams: no such buffer


def test_a_picture_in_a_folder_whose_name_is_not_utf8_decodes(tmp_path):
    folder = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.mkdir(folder)
    path = os.path.join(folder, b"ok.png")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path)
    assert decode_image(os.fsdecode(path)).image.size == (8, 8)
    with pytest.raises(ImageError):
        decode_image(os.fsdecode(os.path.join(folder, b"\xff.png")))  # the file's own name still counts


def test_decode_cost_is_read_from_the_header_before_decoding(tmp_path):
    p = tmp_path / "big.png"
    Image.new("RGBA", (3000, 2000), (1, 2, 3, 4)).save(p)
    with Image.open(p) as im:
        assert images._decode_cost(im) == 3000 * 2000 * (4 + 4 + 12)
        assert im.tile  # nothing decoded yet


@pytest.mark.skipif(not hasattr(__import__("resource"), "getrusage"), reason="peak memory is read with getrusage")
def test_scan_of_large_legal_images_stays_within_the_decode_budget(tmp_path):
    """Eight 3000 x 3000 RGBA PNGs (tiny on disk, legal) scanned by four threads. Each decode
    may hold ~180 MB; with a budget of two decodes the scan's peak memory stays under three,
    where four threads with no budget held four or more at once (and glibc's per-thread heaps
    kept them: before this fix, 8 images of 6300 x 6300 took 2.9 GB over the baseline, now 0.76)."""
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
    im = Image.new("RGBA", (3000, 3000), (10, 200, 30, 128))
    im.save(tmp_path / "a" / "0.png", compress_level=1)
    for i in range(1, 8):
        (tmp_path / "ab"[i % 2] / f"{i}.png").write_bytes((tmp_path / "a" / "0.png").read_bytes())
    assert (tmp_path / "a" / "0.png").stat().st_size < 2_000_000
    r = run_py(f"""
        import json, resource
        from ponyclassifier.core import images
        from ponyclassifier.core.dataset import scan_dataset
        one = 3000 * 3000 * (4 + 4 + 12)
        images._budget.capacity = 2 * one
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        report = scan_dataset({str(tmp_path)!r}, image_size=32, workers=4)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps({{"ok": len(report.samples), "extra": peak - base, "one": one,
                          "reserved": images._budget.peak}}))
    """, timeout=600)
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["ok"] == 8
    assert out["reserved"] <= 2 * out["one"]
    assert out["extra"] < 3 * out["one"], out


def test_one_file_over_the_pixel_bound_is_refused_with_its_reason(tmp_path):
    p = tmp_path / "wide.png"
    Image.new("L", (9000, 5000)).save(p)  # 45 MP, tiny on disk
    with pytest.raises(ImageError) as ei:
        decode_image(p)
    assert ei.value.reason == f"image too large: 9000 x 5000 pixels (limit {images.MAX_PIXELS})"


# ---------------------------------------------------------------------- names


def test_names_that_are_not_utf8_are_shown_escaped_and_never_raise():
    bad = os.fsdecode(b"/d/" + BAD)
    assert name_problem(bad) is not None and name_problem("/d/caf\u00e9.png") is None
    assert display_path(bad) == "/d/\\xff\\xfe.png"
    assert display_path("x\ud800y") == "x\\ud800y"  # a lone surrogate that is no escaped byte
    assert display_path("caf\u00e9.png") == "caf\u00e9.png"
    assert not is_candidate_file(bad) and is_candidate_file("caf\u00e9.png")
    e = ImageError("boom", bad)
    assert e.path == "/d/\\xff\\xfe.png" and str(e).encode("utf-8")


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="these file systems refuse such names")
def test_listings_leave_out_names_that_are_not_utf8_and_say_why(tmp_path):
    data = make_shapes_dataset(tmp_path / "data", per_class=2, size=16)
    png = (data / "circle" / "circle_000.png").read_bytes()
    base = os.fsencode(data)
    Path(os.fsdecode(base + b"/circle/" + BAD)).write_bytes(png)
    os.mkdir(os.fsdecode(base + b"/circle/sub\xe9"))
    Path(os.fsdecode(base + b"/circle/sub\xe9/in.png")).write_bytes(png)
    os.mkdir(os.fsdecode(base + b"/cl\xe4ss"))
    skipped: list = []
    assert list_class_folders(data, skipped) == ["circle", "square", "triangle"]
    files = list(iter_class_file_paths(data / "circle", skipped))
    assert [os.path.basename(f) for f in files] == ["circle_000.png", "circle_001.png"]
    assert sorted(p for p, _ in skipped) == sorted([f"{data}/cl\\xe4ss", f"{data}/circle/sub\\xe9",
                                                    f"{data}/circle/\\xff\\xfe.png"])
    assert all("not valid UTF-8" in why for _, why in skipped)
    entries = list_inputs([data / "circle"])
    assert [(os.path.basename(e.path), e.problem is None) for e in entries] == [
        ("sub\\xe9", False), ("circle_000.png", True), ("circle_001.png", True), ("\\xff\\xfe.png", False)]
    assert expand_paths([data / "circle"]) == files
    with pytest.raises(ImageError) as ei:  # given directly, the decoder refuses it too
        decode_image(os.fsdecode(base + b"/circle/" + BAD))
    assert "not valid UTF-8" in ei.value.reason and ei.value.path.endswith("\\xff\\xfe.png")


@pytest.fixture(scope="module")
def bad_name_cli(tmp_path_factory):
    """A dataset with a file (and a folder) whose names are not UTF-8, trained by the CLI."""
    root = tmp_path_factory.mktemp("names")
    data = make_shapes_dataset(root / "data", per_class=6, size=32)
    png = (data / "square" / "square_000.png").read_bytes()
    Path(os.fsdecode(os.fsencode(data / "square") + b"/" + BAD)).write_bytes(png)
    model = root / "m.pony"
    r = run_cli("train", data, "--out", model, "--recipe", "scratch", "--epochs", "1", "--batch-size", "8",
                "--device", "cpu", "--no-augment", "--json")
    return root, data, model, r


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="these file systems refuse such names")
def test_training_goes_on_past_a_name_that_is_not_utf8(bad_name_cli):
    root, data, model, r = bad_name_cli
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    summary = json.loads(r.stdout.decode().splitlines()[-1])["summary"]
    assert model.exists() and summary["train_images"] + summary["val_images"] == 18
    assert summary["skipped_files"] == [{"path": f"{data}/square/\\xff\\xfe.png", "reason": images._BAD_NAME}]


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="these file systems refuse such names")
def test_predict_prints_a_line_for_every_file_and_a_clear_one_for_a_bad_name(bad_name_cli):
    root, data, model, _ = bad_name_cli
    r = run_cli("predict", model, data / "square", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode("utf-8").splitlines()  # well-formed UTF-8 throughout
    assert len(lines) == 7
    assert sum(line.startswith(f"{data}/square/square_") and "ERROR" not in line for line in lines) == 6
    assert f"{data}/square/\\xff\\xfe.png: ERROR file name is not valid UTF-8" in r.stdout.decode()
    r = run_cli("predict", model, data / "square", "--device", "cpu", "--json")
    out = json.loads(r.stdout)
    assert len(out) == 7 and sum("error" in o for o in out) == 1


# ------------------------------------------------------------ empty results


def test_predict_on_a_folder_without_pictures_says_why(bad_name_cli, tmp_path):
    _, _, model, _ = bad_name_cli
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli("predict", model, empty, "--device", "cpu")
    assert r.returncode == 1
    assert r.stdout.decode().strip() == f"{empty}: ERROR no pictures found in this folder (it is empty)"
    junk = tmp_path / "junk"
    (junk / ".thumbs").mkdir(parents=True)
    for name in (".DS_Store", "Thumbs.db", "notes.txt", "IMG_1.xmp"):
        (junk / name).write_text("x")
    (entry,) = list_inputs([junk])
    assert entry.path == str(junk) and entry.problem == (
        "no pictures found in this folder (2 hidden or system files, 2 text or sidecar files "
        "(.txt .json .csv .md .xmp .aae), 1 hidden folder not searched)")
    assert expand_paths([junk]) == []
    r = run_cli("predict", model, junk, "--device", "cpu", "--json")
    assert r.returncode == 1 and json.loads(r.stdout) == [{"path": str(junk), "error": entry.problem}]
