"""The child process of the fault-injection tests (test_fault_injection.py): performs one
project operation with the test-only kill hook of core/project.py armed, so the process
kills itself (SIGKILL) at step boundary k of that operation.

    python -m tests.core.fault_driver ROOT INCOMING OP K

K >= 0: die at boundary K (counted from 0) of the armed operation, or finish when it has
fewer; K = -1: run it unarmed and print how many boundaries it passed; K = -2: do only
what comes before the armed operation (the "before" picture). OP "loop" runs operations
round and round, unarmed, until the parent kills it at a random moment; OP "save-loop"
saves a model file (ROOT) round and round the same way. Imports only the
torch-free project modules.

With PONYCLASSIFIER_TEST_NO_HARDLINKS=1 in the environment, ``os.link`` fails as it does on
a file system without hard links (FAT, exFAT, some network shares: none can be mounted
here), so the project takes its way without them.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import ponyclassifier.core.project as P

if os.environ.get("PONYCLASSIFIER_TEST_NO_HARDLINKS") == "1":
    def _no_link(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    os.link = _no_link

MOVED = 3  # files per operation


def _arm(k: int) -> None:
    P._fault_seen = 0
    P._fault_at = k


def _circle(p: P.Project) -> list[Path]:
    return sorted(p.root.joinpath("circle").iterdir(), key=lambda f: f.name)[:MOVED]


def _incoming(incoming: Path) -> list[Path]:
    return sorted(incoming.iterdir())[:MOVED]


def _move(p, incoming):
    p.move_to_class(_circle(p), "square")


def _delete(p, incoming):
    p.delete(_circle(p))


def _import(p, incoming):
    p.import_files(_incoming(incoming), "circle")


# op: (what comes first, unarmed; the armed operation)
OPS = {
    "move": ([], _move),
    "delete": ([], _delete),
    "import": ([], _import),
    "undo-move": ([_move], lambda p, i: p.undo()),
    "redo-move": ([_move, lambda p, i: p.undo()], lambda p, i: p.redo()),
    "undo-delete": ([_delete], lambda p, i: p.undo()),
    "undo-import": ([_import], lambda p, i: p.undo()),
    "redo-import": ([_import, lambda p, i: p.undo()], lambda p, i: p.redo()),
}


def _loop(root: str, incoming: Path) -> None:
    p = P.Project(root)
    print("ready", flush=True)
    while True:
        for step in (_move, lambda p, i: p.undo(), lambda p, i: p.redo(), lambda p, i: p.undo(),
                     _delete, lambda p, i: p.undo(), _import, lambda p, i: p.undo(),
                     lambda p, i: p.redo(), lambda p, i: p.undo()):
            step(p, incoming)


def _save_loop(path: str) -> None:
    """Save version 0, 1, 2... of a model file at ``path`` round and round through the
    public save function (its tensor is filled with the version number, which is also in
    its metadata), until killed. Imports torch: only this op does."""
    import torch  # noqa: PLC0415

    from ponyclassifier.core.modelfile import save_model_file  # noqa: PLC0415

    version = 0
    while True:
        save_model_file(path, {"w": torch.full((512, 1024), float(version))}, {"version": version})
        if version == 0:
            print("ready", flush=True)
        version += 1


def main(argv: list[str]) -> int:
    root, incoming, op, k = argv[0], Path(argv[1]), argv[2], int(argv[3])
    if op == "save-loop":
        _save_loop(root)
        return 0
    if op == "loop":
        _loop(root, incoming)
        return 0
    if op == "recover":  # the opening itself (its recovery of a pending operation) is armed
        _arm(k)
        P.Project(root).close()
        print(f"boundaries {P._fault_seen}")
        return 0
    first, armed = OPS[op]
    p = P.Project(root)
    for step in first:
        step(p, incoming)
    if k != -2:
        _arm(k)
        armed(p, incoming)
    p.close()
    print(f"boundaries {P._fault_seen}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
