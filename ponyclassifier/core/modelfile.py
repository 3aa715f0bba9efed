"""The ``.pony`` model file: one safetensors file whose header carries our JSON metadata.

This module owns the on-disk format and nothing else: what goes into the header, how a
file is written so that a crash never destroys the previous one, and how a file of
unknown origin is checked before a single weight is trusted. Model files are shared
on the internet, so loading treats every byte as hostile: nothing is ever unpickled,
the header is validated field by field before any tensor is read, and every failure
surfaces as :class:`ModelFileError` with a reason a user can act on.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import stat
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

FORMAT_NAME = "ponyclassifier-model"
FORMAT_VERSION = 1
MODEL_SUFFIX = ".pony"
MAX_HEADER_BYTES = 16 * 1024 * 1024

_META_KEY = "ponyclassifier"
_TEMP_SUFFIX = ".ponytmp"
# ".NAME.<16 hex>.ponytmp": written by versions before the writer's pid was in the name.
_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{16}" + re.escape(_TEMP_SUFFIX) + r"$")
# ".NAME.<16 hex>.p<pid>.ponytmp": the writer's pid; the writer holds an flock on it while writing.
_TEMP_PID_RE = re.compile(r"^\..+\.[0-9a-f]{16}\.p([0-9]{1,10})" + re.escape(_TEMP_SUFFIX) + r"$")
# A temp file whose writer cannot be proven gone (no lock support, a pid that may have been
# reused, or a name from an older version) is removed only once it is older than this.
ABANDONED_AFTER_S = 24 * 3600.0
_WRITE_CHUNK = 8 * 1024 * 1024

# Every dtype we accept; anything else is refused before safetensors sees it.
_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U64": torch.uint64, "U32": torch.uint32, "U16": torch.uint16, "U8": torch.uint8,
    "BOOL": torch.bool, "C64": torch.complex64,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}
_DTYPE_NAMES = {dtype: name for name, dtype in _DTYPES.items()}

# First byte of a pickle: PROTO (protocol 2+, also legacy torch.save) or an opcode
# that protocol 0/1 pickles commonly start with.
_PICKLE_FIRST_BYTES = frozenset(b"\x80(}])cNIFLSVXJKMUTG")
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")

_PICKLE_REASON = (
    "this is a pickle/PyTorch checkpoint, not a PonyClassifier model; "
    "it was not opened (pickles can run code)"
)


class ModelFileError(Exception):
    """A model file cannot be written or read; ``reason`` is meant for the user."""

    def __init__(self, path, reason: str):
        super().__init__(path, reason)  # args == (path, reason) keeps it picklable
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class ModelHeader:
    metadata: dict
    tensors: dict[str, tuple[str, tuple[int, ...]]]


# --------------------------------------------------------------------------- saving


def first_non_finite(tensors: Mapping[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, or None."""
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return name
    return None


def save_model_file(path, tensors: Mapping[str, torch.Tensor], metadata: Mapping) -> None:
    """Atomically write ``tensors`` and ``metadata`` to ``path``.

    Either the new file is complete at ``path`` or the previous file is untouched.
    """
    path = Path(path)
    bad = first_non_finite(tensors)
    if bad is not None:
        raise ModelFileError(path, f"refusing to write a model whose weights are not all finite numbers ({bad}): "
                                   "the training that made it diverged")
    data = _serialise(path, tensors, metadata)
    write_atomic(path, lambda fh: fh.write(data),
                 error=lambda p, exc: ModelFileError(p, f"cannot write model file: {_os_reason(exc)}"))


class _FdWriter:
    """A minimal binary file object over an OS file descriptor (``write`` only)."""

    def __init__(self, fd: int):
        self._fd = fd

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        while view:
            view = view[os.write(self._fd, view[:_WRITE_CHUNK]):]
        return n


def write_atomic(path, write: Callable[[Any], Any],
                 error: Callable[[Path, OSError], Exception] | None = None) -> None:
    """Write a file through ``write(fh)`` (``fh`` has a binary ``write``) into a temporary
    file beside ``path``, fsync, then rename over ``path``: readers see the old file or the
    whole new one, never a part. On failure the temporary file is removed and the old file
    is untouched; an ``OSError`` is raised as ``error(path, exc)`` (default: a
    :class:`ModelFileError`).

    The temporary name carries this process's pid and a random token, and the file is held
    under an exclusive ``flock`` while it is written, so :func:`cleanup_stale_temp_files`
    in another process (a second ``train`` into the same folder) can tell a live write from
    one whose writer died, and removes only the latter."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.p{os.getpid()}{_TEMP_SUFFIX}")
    created = False
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        created = True
        try:
            _lock(fd, blocking=True)  # released by the close below, after the fsync
            write(_FdWriter(fd))
            # Without this a power cut after the rename can leave a renamed-but-empty file.
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        created = False
    except BaseException as exc:
        if created:
            try:
                os.unlink(temp)
            except OSError:
                pass
        if isinstance(exc, OSError):
            if error is None:
                raise ModelFileError(path, f"cannot write file: {_os_reason(exc)}") from exc
            raise error(path, exc) from exc
        raise
    _fsync_directory(path.parent)


def _lock(fd: int, blocking: bool) -> bool | None:
    """Take an exclusive flock on ``fd``: True if taken, False if another holds it, None
    where this system or file system has no flock (then nothing is proven either way)."""
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        return None  # ENOLCK, EINVAL, EOPNOTSUPP: a file system without locks


def _pid_alive(pid: int) -> bool:
    """Whether a process with this pid may be running here (True when we cannot tell)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


def _serialise(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping) -> bytes:
    meta = dict(metadata)
    meta.update(
        format=FORMAT_NAME,
        format_version=FORMAT_VERSION,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    try:
        meta_json = json.dumps(meta, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"cannot save model: metadata is not JSON-serialisable ({exc})") from exc
    # A private contiguous CPU copy of each tensor: the file must open on CPU-only
    # machines, and safetensors refuses views and tensors that share storage (tied weights).
    flat = {}
    for name, tensor in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ModelFileError(path, f"cannot save model: invalid tensor name {name!r}")
        flat[name] = tensor.detach().to("cpu").clone(memory_format=torch.contiguous_format)
    header_meta = {_META_KEY: meta_json, "format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)}
    try:
        data = safetensors.torch.save(flat, metadata=header_meta)
    except (ValueError, RuntimeError, TypeError, safetensors.SafetensorError) as exc:
        raise ModelFileError(path, f"cannot save model: {exc}") from exc
    if struct.unpack_from("<Q", data)[0] > MAX_HEADER_BYTES:
        raise ModelFileError(path, "cannot save model: metadata is too large")
    return data


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable. Windows cannot open directories; skip there.
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def cleanup_stale_temp_files(directory, *, min_age_s: float = 0.0,
                             abandoned_after_s: float = ABANDONED_AFTER_S) -> list[Path]:
    """Remove temp files that an interrupted :func:`save_model_file` (or any
    :func:`write_atomic`, such as an export) left in ``directory``; return them.

    Only names matching our own temp pattern are touched, and only files that are provably
    abandoned: the writer's pid (in the name) is not a running process AND the writer's
    exclusive lock on the file can be taken (a live write holds it; the lock is held while
    the file is removed). A file whose writer cannot be proven gone (no lock support, a pid
    that is alive again, a name from an older version without a pid) is removed only when
    it is older than ``abandoned_after_s``. ``min_age_s`` spares every temp file younger
    than that.
    """
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        with_pid = _TEMP_PID_RE.match(entry.name)
        if not with_pid and not _TEMP_RE.match(entry.name):
            continue
        if _remove_if_abandoned(entry.path, int(with_pid.group(1)) if with_pid else None,
                                min_age_s, abandoned_after_s):
            removed.append(Path(entry.path))
    return removed


def _remove_if_abandoned(path: str, pid: int | None, min_age_s: float, abandoned_after_s: float) -> bool:
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return False  # gone, a symlink, or unreadable: not ours to judge
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return False
        age = time.time() - info.st_mtime
        if age < min_age_s:
            return False
        locked = _lock(fd, blocking=False)
        if locked is False:
            return False  # a writer holds it right now
        proven = locked is True and pid is not None and not _pid_alive(pid)
        if not proven and age < abandoned_after_s:
            return False
        # Still the file we locked? (It may have been renamed into place and replaced.)
        try:
            now = os.stat(path, follow_symlinks=False)
        except OSError:
            return False
        if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
            return False
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- loading


def read_header(path) -> ModelHeader:
    """Validate ``path`` as a PonyClassifier model file, reading only its header."""
    with _open_for_reading(path) as f:
        return _read_header(f, path)


def load_model_file(path, expected: Mapping[str, tuple[int, ...]] | None = None, device="cpu",
                    dtypes: Mapping[str, str] | None = None):
    """Return ``(metadata, tensors)`` from a validated model file.

    With ``expected`` (tensor name -> shape) the file is refused before any weight is read
    unless it matches exactly; with ``dtypes`` (tensor name -> safetensors dtype name such
    as ``"F32"``) likewise for the stored dtypes: nothing is converted silently.
    """
    with _open_for_reading(path) as f:
        header = _read_header(f, path)
        if expected is not None:
            check_architecture(path, header, expected)
        if dtypes is not None:
            check_dtypes(path, header, dtypes)
        size = os.fstat(f.fileno()).st_size
        f.seek(0)
        try:
            data = f.read()
        except OSError as exc:
            raise ModelFileError(path, f"cannot read model file: {_os_reason(exc)}") from exc
    if len(data) != size:
        raise ModelFileError(path, "damaged model file (it changed while being read)")
    # Parsing bytes we already hold, rather than safetensors.torch.load_file, because
    # load_file mmaps the file: the tensors would then change (or SIGBUS) if the file is
    # later truncated or rewritten in place, and Windows could not replace the file while
    # a model loaded from it is alive.
    try:
        tensors = safetensors.torch.load(data)
    except (safetensors.SafetensorError, ValueError, RuntimeError, TypeError, AssertionError) as exc:
        raise ModelFileError(path, f"damaged model file ({exc})") from exc
    del data
    loaded = {name: (_DTYPE_NAMES.get(t.dtype), tuple(t.shape)) for name, t in tensors.items()}
    if loaded != header.tensors:
        raise ModelFileError(path, "damaged model file (it changed while being read)")
    bad = first_non_finite(tensors)
    if bad is not None:
        raise ModelFileError(path, f"the model's weights are not all finite numbers ({bad}); it cannot predict "
                                   "anything (the training that made it diverged)")
    if str(device) != "cpu":
        try:
            tensors = {name: t.to(device) for name, t in tensors.items()}
        except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
            raise ModelFileError(path, f"cannot load model onto device {device!r}: {exc}") from exc
    return header.metadata, tensors


def _open_for_reading(path):
    # O_NONBLOCK so that a FIFO or device node handed to us cannot block the open;
    # it is rejected by the regular-file check right after.
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ModelFileError(path, f"cannot read model file: {_os_reason(exc)}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ModelFileError(path, "not a regular file, not a PonyClassifier model")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_header(f, path) -> ModelHeader:
    def damaged(detail: str) -> ModelFileError:
        return ModelFileError(path, f"damaged model file ({detail})")

    try:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(9)
        if size == 0 or not prefix:
            raise ModelFileError(path, "empty file, not a PonyClassifier model")
        header_len = struct.unpack("<Q", prefix[:8])[0] if len(prefix) >= 8 else None
        # A safetensors file starts with a little-endian length whose low byte can be
        # anything, 0x80 included; so a pickle signature only counts when the start is
        # not also a plausible safetensors start (no pickle or zip has 5 zero bytes there).
        plausible = header_len is not None and header_len <= MAX_HEADER_BYTES and prefix[8:9] == b"{"

        if not plausible and (prefix[0] in _PICKLE_FIRST_BYTES or prefix.startswith(_ZIP_MAGICS)):
            raise ModelFileError(path, _PICKLE_REASON)
        if header_len is None:
            raise damaged(f"header length missing, file is only {size} bytes")
        if header_len > MAX_HEADER_BYTES or header_len > size - 8:
            raise damaged(f"header length {header_len} is impossible for a file of {size} bytes")
        raw = prefix[8:] + f.read(header_len - (len(prefix) - 8))
    except OSError as exc:
        raise ModelFileError(path, f"cannot read model file: {_os_reason(exc)}") from exc
    if len(raw) != header_len:
        raise damaged("it changed while being read")

    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # deeply nested JSON is a cheap attack
        header = None
    if not isinstance(header, dict):
        raise damaged("header is not valid JSON")

    file_meta = header.pop("__metadata__", None)
    if not isinstance(file_meta, dict) or _META_KEY not in file_meta:
        raise ModelFileError(path, "not a PonyClassifier model file (no PonyClassifier metadata)")
    if file_meta.get("format") != FORMAT_NAME:
        raise ModelFileError(path, "not a PonyClassifier model file (unknown format name)")
    version = file_meta.get("format_version")
    if not isinstance(version, str) or not version.isdigit() or len(version) > 9 or int(version) < 1:
        raise damaged("format version is not a positive number")
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(
            path,
            f"made by a newer PonyClassifier (model format {int(version)}, this version reads up "
            f"to {FORMAT_VERSION}); please update",
        )
    if not all(isinstance(v, str) for v in file_meta.values()):
        raise damaged("header metadata is not text")
    try:
        metadata = json.loads(file_meta[_META_KEY])
    except (ValueError, RecursionError):
        metadata = None
    if not isinstance(metadata, dict):
        raise damaged("PonyClassifier metadata is not valid JSON")

    data_len = size - 8 - header_len
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict):
            raise damaged(f"tensor {name!r} has no description")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise damaged(f"tensor {name!r} has unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
            raise damaged(f"tensor {name!r} has an invalid shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(n) for n in offsets)):
            raise damaged(f"tensor {name!r} has invalid data offsets")
        begin, end = offsets
        numel = 1
        for n in shape:
            numel *= n
        if begin > end or end - begin != numel * _DTYPES[dtype].itemsize:
            raise damaged(f"tensor {name!r} has data offsets that do not fit its shape")
        tensors[name] = (dtype, tuple(shape))
        spans.append((begin, end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise damaged("tensor data overlaps or has gaps")
        position = end
    if position != data_len:
        raise damaged("size does not match its header")
    return ModelHeader(metadata=metadata, tensors=tensors)


def check_architecture(path, header: ModelHeader, expected: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse a file whose tensor names and shapes (from its header) are not exactly ``expected``."""
    found = {name: shape for name, (_, shape) in header.tensors.items()}
    differences = [f"missing {name}" for name in expected if name not in found]
    differences += [
        f"{name} has shape {found[name]}, expected {tuple(shape)}"
        for name, shape in expected.items()
        if name in found and found[name] != tuple(shape)
    ]
    differences += [f"unexpected {name}" for name in found if name not in expected]
    if differences:
        shown = "; ".join(differences[:3])
        if len(differences) > 3:
            shown += f"; and {len(differences) - 3} more"
        raise ModelFileError(path, f"does not match the expected architecture: {shown}")


def check_dtypes(path, header: ModelHeader, dtypes: Mapping[str, str]) -> None:
    """Refuse a file whose tensors are not stored in the dtypes the network holds them in
    (a float16 or integer tensor where float32 is expected): converting would change the
    weights without anyone having asked for it."""
    wrong = [f"{name} is stored as {header.tensors[name][0]}, expected {want}"
             for name, want in dtypes.items() if name in header.tensors and header.tensors[name][0] != want]
    if wrong:
        shown = "; ".join(wrong[:3]) + (f"; and {len(wrong) - 3} more" if len(wrong) > 3 else "")
        raise ModelFileError(path, f"weights stored in the wrong number type (not converted): {shown}")


def dtype_name(dtype: torch.dtype) -> str | None:
    """The safetensors name (``"F32"``) of a torch dtype, or None if a model file cannot hold it."""
    return _DTYPE_NAMES.get(dtype)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return f"disk full ({exc.strerror})"
    return exc.strerror or str(exc)
