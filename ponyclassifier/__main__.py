"""``ponyclassifier`` / ``python -m ponyclassifier``: no arguments (or ``--demo``, or a
project folder) opens the app; a subcommand runs headless (see ``ponyclassifier --help``)."""

from __future__ import annotations

import os
import sys

GUI_WORDS = ("gui", "app")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    opens_app = not argv or argv[0] in GUI_WORDS or argv[0] == "--demo" or os.path.isdir(argv[0])
    if not opens_app:
        from .cli import main as cli_main

        return cli_main(argv)
    if argv and argv[0] in GUI_WORDS:
        argv = argv[1:]
    from .gui.app import main as gui_main

    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main())
