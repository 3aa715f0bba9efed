"""Keras-style model summary: real output shapes from hooks, parameter totals, frozen layers."""

from __future__ import annotations

import torch

from ponyclassifier.core import models as M
from ponyclassifier.core.summary import format_count, freeze_for_recipe, model_summary, recipe_summary


def test_scratch_cnn_rows_shapes_and_totals():
    arch = M.arch_config("scratch", 3, 32)
    net = M.build_model(arch)
    s = model_summary(net, (3, 32, 32))
    names = [r["name"] for r in s]
    # two "valid" conv blocks for 32 px (32 -> 30, pool 15 -> 13, pool 6), then the classifier
    assert names[:5] == ["features.0", "features.1", "features.2", "features.3", "features.4"]
    conv1 = s.rows[1]
    assert conv1["type"] == "Conv2d" and conv1["output_shape"] == (32, 30, 30)
    assert conv1["params"] == 3 * 32 * 9 and conv1["trainable"]
    pool2 = [r for r in s if r["type"] == "MaxPool2d"][-1]
    assert pool2["output_shape"] == (64, 6, 6) and pool2["params"] == 0 and not pool2["trainable"]
    assert s.rows[-1]["output_shape"] == (3,) and s.output_shape == (3,)
    total = sum(p.numel() for p in net.parameters())
    assert s.total_params == total == sum(r["params"] for r in s)
    assert s.trainable_params == total and s.frozen_params == 0
    text = s.to_text()
    assert "Total params" in text and f"{total:,}" in text


def test_efficientnet_transfer_split_marks_the_base_frozen():
    s = recipe_summary("transfer", num_classes=4, image_size=224)
    by_name = {r["name"]: r for r in s}
    assert by_name["_conv_stem"]["output_shape"] == (32, 112, 112)
    assert not by_name["_conv_stem"]["trainable"] and not by_name["_blocks.15._project_conv"]["trainable"]
    assert by_name["_fc"]["trainable"] and by_name["_fc"]["output_shape"] == (4,)
    assert s.trainable_params == 1280 * 4 + 4
    assert s.total_params > 3_000_000 and s.frozen_params == s.total_params - s.trainable_params
    assert sum(r["params"] for r in s) == s.total_params


def test_finetune_unfreezes_the_top_blocks_in_its_last_phase():
    arch = M.arch_config("finetune", 2, 224)
    net = M.build_model(arch)
    first = model_summary(freeze_for_recipe(net, "finetune", arch, phase="first"), (3, 224, 224))
    last = model_summary(freeze_for_recipe(net, "finetune", arch, phase="last"), (3, 224, 224))
    assert first.trainable_params == 1280 * 2 + 2
    assert last.trainable_params > first.trainable_params
    rows = {r["name"]: r for r in last}
    assert rows[f"_blocks.{M.DEFAULT_FINETUNE_FROM}._depthwise_conv"]["trainable"]
    assert not rows[f"_blocks.{M.DEFAULT_FINETUNE_FROM - 1}._depthwise_conv"]["trainable"]


def test_summary_leaves_the_model_as_it_was():
    net = M.build_model(M.arch_config("scratch", 2, 28, channels=1))
    net.train()
    bn = next(m for m in net.features if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    model_summary(net, (1, 28, 28))
    assert net.training and (bn.running_mean == before).all()
    assert not any(m._forward_hooks for m in net.modules())


def test_format_count():
    assert format_count(999) == "999" and format_count(12_345) == "12.3 k" and format_count(3_400_000) == "3.40 M"
