"""Plain-text formatting shared by every place: sizes, durations, probabilities for people,
rich text made plain, the picture file filter and the recipe names. Qt-free."""

from __future__ import annotations

import html
import math
import re

__all__ = ["IMAGE_FILTER", "RECIPE_LABELS", "fmt_duration", "human_size", "percent", "percent_1dp", "plain_text"]

RECIPE_LABELS = {"scratch": "From scratch (small CNN)", "transfer": "Transfer learning (EfficientNet-Lite0)",
                 "finetune": "Fine-tune (EfficientNet-Lite0)"}



def human_size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"



def fmt_duration(s: float) -> str:
    if not math.isfinite(s) or s < 0:
        return "–"
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"



# The picture files an "Open…" dialog offers (Predict, play mode, Explain).
IMAGE_FILTER = "Pictures (*.png *.jpg *.jpeg *.gif *.bmp *.webp *.tif *.tiff *.ppm *.pgm);;All files (*)"


# Percentages are rounded down, never up: 49.96 % under a 50 % threshold reads "49 %", and
# nothing short of certain reads "100 %". Every page that shows a probability uses these.
def percent(p: float, sep: str = " ") -> str:
    """A probability for people: "92 %", "4.2 %", "<0.1 %" (``sep`` goes before the "%")."""
    v = p * 100
    if v >= 10:
        return f"{math.floor(v + 1e-9)}{sep}%"
    if v >= 0.1:
        return f"{math.floor(v * 10 + 1e-9) / 10:.1f}{sep}%"
    return f"<0.1{sep}%"


def percent_1dp(p: float) -> str:
    """A probability with one decimal, rounded down ("92.3 %"): the results table's format."""
    return f"{math.floor(p * 1000 + 1e-9) / 10:.1f} %"


def plain_text(text: str, newline: str = "\n") -> str:
    """Rich text -> plain text for drawText or a status bar (messages use <b>, <br> and
    entities only): tags dropped, ``<br>`` becomes ``newline``, entities decoded."""
    text = re.sub(r"<br\s*/?>", newline, text)
    text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(text)

