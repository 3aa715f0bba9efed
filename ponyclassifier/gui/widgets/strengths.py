"""The augmentation strengths as the Dataset place's preview and the Train place's custom
augmentation both show them: the AugmentConfig field, its label, range, unit and tip."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["STRENGTHS", "Strength"]


@dataclass(frozen=True)
class Strength:
    name: str  # the AugmentConfig field
    label: str
    maximum: float
    step: float
    suffix: str
    percent: bool  # shown as a percentage of a fraction
    tip: str


STRENGTHS: tuple[Strength, ...] = (
    Strength("rotation", "Rotation", 180, 5, " °", False, "Turn each image by up to ± this many degrees."),
    Strength("width_shift", "Horizontal shift", 50, 1, " %", True, "Move left/right by up to ± this share of the width."),
    Strength("height_shift", "Vertical shift", 50, 1, " %", True, "Move up/down by up to ± this share of the height."),
    Strength("shear", "Shear", 45, 1, " °", False, "Slant by up to ± this many degrees."),
    Strength("zoom", "Zoom", 50, 1, " %", True, "Zoom in or out by up to ± this much."),
    Strength("brightness", "Brightness", 80, 1, " %", True, "Make brighter or darker by up to ± this much."),
    Strength("contrast", "Contrast", 80, 1, " %", True, "Raise or lower contrast by up to ± this much."),
)

