"""``ponyclassifier`` / ``python -m ponyclassifier``: no arguments opens the app, a
subcommand runs headless (see ``ponyclassifier --help``)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("gui", "app"):
        from .gui.app import main as gui_main

        return gui_main(argv[1:])
    from .cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
