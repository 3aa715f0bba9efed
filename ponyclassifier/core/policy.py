"""Training defaults chosen from the data: the "auto" settings and the reason for each.

Most people never touch a setting, so a default has to be right for data we have never
seen. A fixed default cannot be: Keras-strength augmentation that helps 150 px photos over
50 epochs costs 28 px silhouettes 4-9 points in a 5-epoch run, and a batch of 64 leaves a
300-image set 20 optimizer steps in all. So every setting left on "auto" is decided here,
after the scan, from what the data is (image size, colour, images per class) and from
what the run is (recipe, epochs), and each decision carries a sentence saying why. The
engine prints those sentences before training ("auto: ...") and stores them in the model
file; the Train panel shows the same sentences from the same function.

Evidence for the rules: ``benchmarks/README.md`` (six real data sets, CPU, measured).
In short: without augmentation beats any augmentation in runs under 10 epochs, and at
28-32 px up to 15 epochs; small sets need small batches and more epochs (steps, not
epochs, are what a network learns from); a one-cycle peak of 3e-3 beats 1e-3 for the
scratch network; refitting on all images after choosing the epoch count on the validation
fifth is worth 0.5-1.5 points on sets of a few thousand images, and free for a frozen base.

Nothing here imports Qt or touches torch: the rules are plain functions of plain numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .augment import AugmentConfig

AUTO = "auto"

# scratch
SCRATCH_LR = 3e-3
SCRATCH_MIN_EPOCHS = 15
SCRATCH_MAX_EPOCHS = 50
SCRATCH_TARGET_STEPS = 600  # optimizer steps that small sets get at least (more epochs, each cheap)
STEPS_PER_EPOCH_TARGET = 20  # a batch small enough that an epoch has about this many steps
MIN_AUTO_BATCH = 32  # Keras' default; 16 learned a little more per epoch on tiny sets but ran 20% slower
# transfer (a head on cached features: an epoch costs milliseconds)
TRANSFER_EPOCHS = 40
TRANSFER_LR = 1e-2
# augmentation
AUG_MIN_EPOCHS = 10  # shorter runs learn faster from the plain pictures
AUG_MIN_SIZE = 32  # below this a shift of a pixel or two already changes what the picture shows
AUG_STRONG_SIZE = 64
AUG_STRONG_EPOCHS = 30
FLIP_MIN_SIDE = 64  # colour pictures at least this big are taken for photos, where a mirror image is the same thing
# validation
VAL_SHARE = 0.2
VAL_SHARE_LARGE = 0.1
LARGE_SET = 10_000
SCRATCH_REFIT_MAX_IMAGES = 5_000  # refitting a scratch network trains it twice: only where that is cheap

MILD = AugmentConfig(rotation=10.0, width_shift=0.1, height_shift=0.1, shear=0.0, zoom=0.1,
                     horizontal_flip=False, brightness=0.1, contrast=0.1)
STRONG = AugmentConfig(horizontal_flip=False)  # Keras ImageDataGenerator strengths (the talks')


@dataclass(frozen=True)
class DataFacts:
    """What the policy needs to know about a dataset."""

    images: int  # usable images (training and validation together)
    classes: int
    min_per_class: int
    image_size: int  # the size training works at
    source_side: int  # the typical smaller side of the files themselves
    channels: int  # 1 grayscale, 3 colour

    @property
    def per_class(self) -> int:
        return self.images // max(1, self.classes)

    @property
    def flip_safe(self) -> bool:
        """Colour photos (not tiny): a mirrored dog is a dog. Grayscale and small pictures
        are often digits, letters and symbols, whose mirror image is another thing."""
        return self.channels == 3 and self.source_side >= FLIP_MIN_SIDE


@dataclass
class Decision:
    """One setting: its value, whether auto chose it, and why (for people to read)."""

    name: str
    value: Any
    auto: bool
    reason: str

    def text(self) -> str:
        return f"{self.name}: {'auto: ' if self.auto else ''}{describe_value(self.name, self.value)} ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        v = self.value.to_dict() if isinstance(self.value, AugmentConfig) else self.value
        return {"value": v, "auto": self.auto, "reason": self.reason}


@dataclass
class TrainingPlan:
    recipe: str
    epochs: Decision
    lr: Decision
    batch_size: Decision
    augment: Decision
    val_split: Decision
    refit: Decision
    extra: list[Decision] = field(default_factory=list)

    def decisions(self) -> list[Decision]:
        return [self.epochs, self.lr, self.batch_size, self.augment, self.val_split, self.refit, *self.extra]

    def lines(self, only_auto: bool = False) -> list[str]:
        return [d.text() for d in self.decisions() if d.auto or not only_auto]

    def to_dict(self) -> dict[str, Any]:
        return {d.name: d.to_dict() for d in self.decisions()}


PHOTO_SIDE = 64  # pictures at least this big are photos, for choosing a recipe
SCRATCH_WORTH_IT = 5_000  # this many small pictures: a network from scratch learns them well, and fast


def default_recipe(facts: DataFacts) -> tuple[str, str]:
    """The recipe a project starts with, and why: a pretrained network (``transfer``) unless
    the set is many small pictures, which a network trained from scratch learns well in a
    fraction of the time (224 px features of every image take long on a CPU: on 7,287
    silhouettes of 28 px, scratch reached 95% in a minute, transfer 99% in nine)."""
    if facts.source_side < PHOTO_SIDE and facts.images >= SCRATCH_WORTH_IT:
        return "scratch", (f"{facts.images:,} small pictures ({facts.source_side} px): a network trained from "
                           "scratch learns them well in a fraction of the time; transfer may score a few points "
                           "more, slowly")
    if facts.source_side < PHOTO_SIDE:
        return "transfer", (f"{facts.images:,} small pictures: a pretrained network's features beat a network "
                            "trained from scratch on this few")
    return "transfer", "photos: a network pretrained on ImageNet photos is the best start"


def describe_value(name: str, v: Any) -> str:
    if name == "augmentation":
        return describe_augment(v)
    if name == "refit on all images":
        return "yes" if v else "no"
    if name == "validation share":
        return f"{v:.0%}"
    if name == "learning rate":
        return f"{v:g}"
    return str(v)


def describe_augment(cfg: AugmentConfig | None) -> str:
    if cfg is None or cfg.is_identity:
        return "none"
    parts = []
    if cfg.horizontal_flip:
        parts.append("left-right flips")
    if cfg.rotation:
        parts.append(f"rotation ±{cfg.rotation:g}°")
    if cfg.width_shift or cfg.height_shift:
        parts.append(f"shifts ±{max(cfg.width_shift, cfg.height_shift):.0%}")
    if cfg.shear:
        parts.append(f"shear ±{cfg.shear:g}°")
    if cfg.zoom:
        parts.append(f"zoom ±{cfg.zoom:.0%}")
    if cfg.brightness or cfg.contrast:
        parts.append(f"brightness/contrast ±{max(cfg.brightness, cfg.contrast):.0%}")
    return ", ".join(parts)


def auto_batch_size(train_images: int, image_size: int) -> int:
    """A power of two giving an epoch about 20 steps, between 32 and 64 (32 above 64 px,
    where a batch costs more memory and a step takes long enough to keep the cores busy)."""
    cap = 64 if image_size <= 64 else 32
    want = max(1, train_images // STEPS_PER_EPOCH_TARGET)
    b = 1 << max(0, int(math.log2(want)))
    return max(MIN_AUTO_BATCH, min(cap, b))


def val_share(images: int) -> tuple[float, str]:
    if images >= LARGE_SET:
        return VAL_SHARE_LARGE, f"{images:,} images: a tenth is {int(images * VAL_SHARE_LARGE):,}, plenty to judge by"
    return VAL_SHARE, "a fifth of the images set aside to judge each epoch by"


def plan_with_share(config: Any, facts: DataFacts, share: float, reason: str) -> TrainingPlan:
    """The plan of a run whose validation images are already chosen (a project's split):
    ``share`` of the images validate, for ``reason``; the rest is planned as usual."""
    import dataclasses  # noqa: PLC0415

    plan = plan_training(dataclasses.replace(config, val_split=share), facts)
    plan.val_split = Decision("validation share", share, False, reason)
    return plan


def plan_training(config: Any, facts: DataFacts) -> TrainingPlan:
    """The settings a run will use. ``config`` is an engine ``TrainConfig``: a field left
    None (``augment``: "auto") is chosen here from ``facts``; a set field is kept as set."""
    recipe = config.recipe
    # validation share first: the training set's size drives the batch and the epochs
    if config.val_split is None:
        share, why = val_share(facts.images)
        val = Decision("validation share", share, True, why)
    else:
        val = Decision("validation share", float(config.val_split), False, "as set")
    train_images = facts.images - _val_count(facts, val.value)

    if config.batch_size is None:
        if recipe == "scratch":
            b = auto_batch_size(train_images, facts.image_size)
            why = f"about {max(1, train_images // b)} steps per epoch on {train_images:,} training images"
        else:
            b = 32
            why = "the head on cached features, or the top blocks at 224 px"
        batch = Decision("batch size", b, True, why)
    else:
        batch = Decision("batch size", int(config.batch_size), False, "as set")

    steps = max(1, math.ceil(train_images / batch.value))
    if config.epochs is None:
        if recipe == "scratch":
            e = min(SCRATCH_MAX_EPOCHS, max(SCRATCH_MIN_EPOCHS, math.ceil(SCRATCH_TARGET_STEPS / steps)))
            why = ("enough passes for a network that starts from nothing" if e == SCRATCH_MIN_EPOCHS else
                   f"a small set: {steps} steps per epoch, so more epochs (each takes little time)")
        elif recipe == "transfer":
            e, why = TRANSFER_EPOCHS, "only the head trains, on cached features: epochs take milliseconds"
        else:
            e, why = 12, "half for the new head, half for the unfrozen top blocks"
        epochs = Decision("epochs", e, True, why)
    else:
        epochs = Decision("epochs", int(config.epochs), False, "as set")

    if config.lr is None:
        if recipe == "scratch":
            lr = Decision("learning rate", SCRATCH_LR, True, "one-cycle peak for a batch-normalised network")
        elif recipe == "transfer":
            lr = Decision("learning rate", TRANSFER_LR, True, "one-cycle peak for a head on fixed features")
        else:
            lr = Decision("learning rate", 3e-3, True, "for the head; the top blocks get a tenth of it")
    else:
        lr = Decision("learning rate", float(config.lr), False, "as set")

    augment = _augment_decision(config.augment, recipe, facts, epochs.value, getattr(config, "allow_flip", True))
    refit = _refit_decision(config.refit, recipe, facts, val.value)
    return TrainingPlan(recipe, epochs, lr, batch, augment, val, refit)


def _val_count(facts: DataFacts, share: float) -> int:
    return int(round(facts.images * share)) if share > 0 else 0


def _augment_decision(setting: Any, recipe: str, facts: DataFacts, epochs: int, allow_flip: bool = True) -> Decision:
    if setting is None:
        return Decision("augmentation", None, False, "turned off")
    if isinstance(setting, AugmentConfig):
        return Decision("augmentation", None if setting.is_identity else setting, False, "as set")
    flips = facts.flip_safe and allow_flip
    flip_note = ("; left-right flips, since these are colour photos" if flips else
                 "; no flips, as asked" if not allow_flip else
                 "; no flips: in grayscale or small pictures a mirror image can be another thing")
    if recipe in ("transfer", "finetune"):
        if recipe == "transfer" or epochs < 2 * AUG_MIN_EPOCHS:
            return Decision("augmentation", None, True,
                            "a frozen base gives the same features to every copy of a picture; augmented "
                            "copies each cost a pass through the network and measured no better")
    # the pictures' own detail: small files upscaled to 224 px for a pretrained base stay small pictures
    size = min(facts.image_size, facts.source_side or facts.image_size)
    if epochs < AUG_MIN_EPOCHS:
        return Decision("augmentation", None, True,
                        f"a short run of {epochs} epochs learns more from the pictures as they are")
    if size < AUG_MIN_SIZE:
        return Decision("augmentation", None, True,
                        f"{size} px pictures: moving a pixel or two already changes what they show")
    strong = size >= AUG_STRONG_SIZE and epochs >= AUG_STRONG_EPOCHS
    base = STRONG if strong else MILD
    cfg = AugmentConfig(**{**base.to_dict(), "horizontal_flip": flips})
    why = (f"a long run ({epochs} epochs) on {size} px pictures can use strong variation"
           if strong else f"{epochs} epochs on {size} px pictures: mild variation")
    return Decision("augmentation", cfg, True, why + flip_note)


def _refit_decision(setting: bool | None, recipe: str, facts: DataFacts, share: float) -> Decision:
    if share <= 0:
        return Decision("refit on all images", False, setting is None, "no validation images were set aside")
    if recipe == "finetune":
        return Decision("refit on all images", False, setting is None,
                        "fine-tuning twice would double the cost" if setting is None else
                        "not offered for fine-tuning, which would have to run twice")
    if setting is not None:
        return Decision("refit on all images", bool(setting), False, "as set")
    if recipe == "transfer":
        return Decision("refit on all images", True, True,
                        "after the validation images chose the epoch, the head trains again on every image "
                        "(seconds, on cached features); the validation figures are from before")
    if recipe == "scratch" and facts.images <= SCRATCH_REFIT_MAX_IMAGES:
        return Decision("refit on all images", True, True,
                        f"a small set ({facts.images:,} images): the final network trains again on every image "
                        "for the best epoch count; the validation figures are from the first pass")
    return Decision("refit on all images", False, True,
                    f"{facts.images:,} images: a second pass would double the time for little gain")
