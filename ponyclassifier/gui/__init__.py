"""The desktop app (PySide6). May import core; core never imports this package."""
