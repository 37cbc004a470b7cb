"""Fine-tuning: initialise a model from a trained run or a checkpoint made for other classes or another layout.

Every tensor of the new model whose name and shape match the source is loaded. The classifier (``fc``, DualHead's
``fc_fine``/``fc_coarse``) keeps its fresh initialisation when the classes differ (count, or names when both sides
know them). Layout-dependent tensors are handled when the two layouts differ:

- learned joint-indexed tensors (DG-STGCN's ``A`` ``(K, V, V)`` and ``add_coeff``, ST-GCN's importance ``PA``,
  ST-GCN++'s learned ``A``, MS-G3D's ``A_res`` ``(S·τ·V, τ·V)``, the data BatchNorm over ``M·V·C``) are *mapped*
  through the joint mapping when every target joint has a source joint of the same name (naming conventions
  unified: ``ShoulderLeft``, ``left_shoulder`` and ``LShoulder`` are one joint), and re-initialised otherwise;
- fixed graph buffers (ST-GCN's partitions) are the target layout's own: re-initialised;
- anything else whose shape differs (DualHead's spatial-attention kernel over the joints) is re-initialised.

``initialise_from`` returns an ``InitReport`` (loaded, mapped, re-initialised with the reason, unused source
tensors, the joint mapping, frozen parameters) that training prints and records in ``run.json``. Checkpoints are
read with ``torch.load(weights_only=True)``: no file can execute code.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from schemas.layouts import Layout, canonical_joint_name, layout_from_attrs

CLASSIFIER = re.compile(r"^fc(_fine|_coarse)?\.")


@dataclass(frozen=True)
class InitReport:
    """What ``initialise_from`` did to each tensor of the model's state dict."""

    source: str
    loaded: tuple[str, ...]
    mapped: tuple[str, ...]
    reinitialised: dict[str, str]  # key -> why
    unused: tuple[str, ...]  # source tensors no target tensor took
    joint_mapping: tuple[str, ...] | None  # per target joint: the source joint it takes (None: layouts equal)
    frozen: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        why = "; ".join(f"{k}: {v}" for k, v in list(self.reinitialised.items())[:6])
        more = f"; ... ({len(self.reinitialised) - 6} more)" if len(self.reinitialised) > 6 else ""
        return (f"init from {self.source}: loaded {len(self.loaded)} tensors, mapped {len(self.mapped)}, "
                f"re-initialised {len(self.reinitialised)}" + (f" ({why}{more})" if why else "")
                + (f", {len(self.unused)} source tensors unused" if self.unused else "")
                + (f", {len(self.frozen)} parameters frozen" if self.frozen else ""))


@dataclass(frozen=True)
class Checkpoint:
    """Source weights under our key names; layout and classes when a run directory records them."""

    path: str
    state: dict[str, Tensor]
    layout: Layout | None = None
    class_names: tuple[str, ...] | None = None
    arch: str | None = None


# ---------------------------------------------------------------------------------------------------------------
# Joints


def _joint_key(name: str) -> str:
    """One spelling per joint: ``ShoulderLeft`` / ``left_shoulder`` / ``LShoulder`` -> ``lshoulder``."""
    name = canonical_joint_name(name)
    for side, prefix in (("Left", "L"), ("Right", "R")):
        if name.endswith(side) and len(name) > len(side):
            name = prefix + name[:-len(side)]
    return name.lower()


def joint_mapping(source: Layout, target: Layout) -> tuple[int, ...] | None:
    """For each ``target`` joint, the index of the ``source`` joint of the same name; None when one has none."""
    index = {_joint_key(n): i for i, n in enumerate(source.joint_names)}
    picked = [index.get(_joint_key(n)) for n in target.joint_names]
    return None if None in picked else tuple(picked)


def _map_square(src: Tensor, idx: Tensor, v_src: int) -> Tensor | None:
    """``(..., V, V)`` -> both joint axes indexed by ``idx``."""
    if src.ndim < 2 or src.shape[-2:] != (v_src, v_src):
        return None
    return src.index_select(-1, idx).index_select(-2, idx)


def _map_blocks(src: Tensor, idx: Tensor, v_src: int) -> Tensor | None:
    """MS-G3D ``A_res`` ``(S·τ·V, τ·V)`` (rows scale-major, then window offset, then joint) -> joints indexed."""
    rows, cols = src.shape
    if cols % v_src or rows % cols:
        return None
    s, w = rows // cols, cols // v_src
    out = src.reshape(s, w, v_src, w, v_src).index_select(2, idx).index_select(4, idx)
    return out.reshape(s * w * len(idx), w * len(idx))


def _map_data_bn(src: Tensor, idx: Tensor, v_src: int, channels: int) -> Tensor | None:
    """Data BN features ``(M·V·C,)``, index ``(m·V + v)·C + c`` -> joints indexed."""
    if src.numel() % (v_src * channels):
        return None
    return src.reshape(-1, v_src, channels).index_select(1, idx).reshape(-1)


def _map_coeff(src: Tensor, idx: Tensor, current: Tensor) -> Tensor:
    """DG-STGCN ``add_coeff`` (one entry per joint, at least 25 kept): the first V entries indexed."""
    out = current.clone()
    out[:len(idx)] = src[idx]
    return out


def map_tensor(key: str, src: Tensor, current: Tensor, idx: Tensor, v_src: int, channels: int) -> Tensor | None:
    """``src`` (source layout, ``v_src`` joints) carried onto the target layout through ``idx`` (a source joint per
    target joint), shaped like ``current``; None when ``key`` is not a joint-indexed tensor this module knows."""
    if key.startswith("data_bn.") and src.ndim == 1 and not key.endswith("num_batches_tracked"):
        out = _map_data_bn(src, idx, v_src, channels)
    elif key.endswith("add_coeff"):
        out = _map_coeff(src, idx, current)
    elif key.endswith("A_res") and src.ndim == 2:
        out = _map_blocks(src, idx, v_src)
    elif re.search(r"(^|\.)P?A$", key):
        out = _map_square(src, idx, v_src)
    else:
        return None
    return out if out is not None and out.shape == current.shape else None


def _joint_indexed(key: str) -> bool:
    return (key.startswith("data_bn.") and not key.endswith("num_batches_tracked")) or bool(
        re.search(r"(^|\.)(P?A|A_res|add_coeff)$", key))


# ---------------------------------------------------------------------------------------------------------------
# Sources


def read_checkpoint(path, model: nn.Module) -> Checkpoint:
    """Weights from a run directory (``best.pt``, with its layout and classes from ``run.json``), one of our
    checkpoints (``{"model": state_dict}``), or a reference state dict (pyskl, MS-G3D, DualHead-Net; renamed to our
    keys through the importers' name mapping)."""
    path = Path(path)
    if path.is_dir():
        for name in ("run.json", "best.pt"):
            if not (path / name).exists():
                raise FileNotFoundError(f"{path}: no {name}; --init-from takes a finished run directory or a "
                                        "checkpoint file")
        run = json.loads((path / "run.json").read_text())
        state = _load(path / "best.pt")["model"]
        return Checkpoint(str(path), dict(state), layout_from_attrs(run), tuple(run["class_names"]), run["arch"])
    loaded = _load(path)
    state = loaded.get("model", loaded.get("state_dict", loaded))
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors (or one under 'model' / 'state_dict')")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    ours = model.state_dict()
    if not any(k in ours for k in state):
        state = _from_reference(state, model, path)
    return Checkpoint(str(path), state)


def _load(path: Path) -> dict:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable or unsafe file: one clear error
        raise ValueError(f"{path}: not a checkpoint that loads with weights_only=True ({exc})") from None
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a dict checkpoint, got {type(obj).__name__}")
    return dict(obj)


def _from_reference(state: dict[str, Tensor], model: nn.Module, path: Path) -> dict[str, Tensor]:
    from trainer.models.reference import reference_names

    try:
        ours = {ref: key for key, ref in reference_names(model).items()}
    except ValueError as exc:
        raise ValueError(f"{path}: no key matches {type(model).__name__} and {exc}") from None
    renamed = {ours[k]: v for k, v in state.items() if k in ours}
    if not renamed:
        raise ValueError(f"{path}: none of its {len(state)} keys is a {type(model).__name__} key, ours or the "
                         "reference's")
    return renamed | {k: v for k, v in state.items() if k not in ours}


# ---------------------------------------------------------------------------------------------------------------
# Initialisation


def initialise_from(model: nn.Module, source, *, layout: Layout, class_names=None, in_channels: int,
                    arch: str | None = None, freeze_backbone: bool = False,
                    log: Callable[[str], None] = print) -> InitReport:
    """Load ``source`` (a run directory or checkpoint path, or a ``Checkpoint``) into ``model`` (architecture
    ``arch``) in place, as the module docstring says; with ``freeze_backbone`` every loaded or mapped parameter
    outside the classifier stops taking gradients. Returns (and logs) what happened to each tensor."""
    ckpt = source if isinstance(source, Checkpoint) else read_checkpoint(source, model)
    if arch is not None and ckpt.arch is not None and ckpt.arch != arch:
        raise ValueError(f"{ckpt.path} trained {ckpt.arch}; it cannot initialise {arch}")
    target = model.state_dict()
    params = dict(model.named_parameters())
    if ckpt.layout is None:  # a bare checkpoint: its layout differs when a joint-indexed tensor's shape does
        same_layout = not any(_joint_indexed(k) and k in ckpt.state and ckpt.state[k].shape != v.shape
                              for k, v in target.items())
    else:
        same_layout = ckpt.layout.joint_names == layout.joint_names
    idx = None if same_layout or ckpt.layout is None else joint_mapping(ckpt.layout, layout)
    classes_differ = (class_names is not None and ckpt.class_names is not None
                      and tuple(class_names) != ckpt.class_names)
    new, loaded, mapped, reinit = {}, [], [], {}
    for key, current in target.items():
        src = ckpt.state.get(key)
        if src is None:
            reinit[key] = "not in the source"
        elif CLASSIFIER.match(key) and (classes_differ or src.shape != current.shape):
            reinit[key] = f"classifier: {_classes(src, ckpt.class_names)} -> {_classes(current, class_names)} classes"
        elif not same_layout and _joint_indexed(key):
            if key not in params and not key.startswith("data_bn."):
                reinit[key] = f"the {layout.name} layout's own graph"
            elif ckpt.layout is None:
                reinit[key] = "joint-indexed, and the checkpoint does not record its layout"
            elif idx is None:
                reinit[key] = f"joint-indexed, and no joint mapping {ckpt.layout.name} -> {layout.name}"
            else:
                out = map_tensor(key, src, current, torch.as_tensor(idx), ckpt.layout.num_joints, in_channels)
                if out is None:
                    reinit[key] = f"joint-indexed, shape {tuple(src.shape)} does not map to {tuple(current.shape)}"
                else:
                    new[key] = out
                    mapped.append(key)
        elif src.shape != current.shape:
            reinit[key] = f"shape {tuple(src.shape)} -> {tuple(current.shape)}"
        else:
            new[key] = src
            loaded.append(key)
    if not new:
        raise ValueError(f"{ckpt.path}: no tensor matches this {type(model).__name__} by name and shape (another "
                         "architecture?)")
    model.load_state_dict(target | new)
    frozen = []
    if freeze_backbone:
        for key in (*loaded, *mapped):
            if key in params and not CLASSIFIER.match(key):
                params[key].requires_grad_(False)
                frozen.append(key)
    names = None if idx is None else tuple(ckpt.layout.joint_names[i] for i in idx)
    report = InitReport(ckpt.path, tuple(loaded), tuple(mapped), reinit,
                        tuple(k for k in ckpt.state if k not in target), names, tuple(frozen))
    log(report.summary())
    return report


def _classes(weight: Tensor, names) -> str:
    return str(len(names)) if names is not None else str(weight.shape[0])


def param_groups(model: nn.Module, lr: float, backbone_lr_mult: float = 1.0) -> list[dict[str, Any]]:
    """SGD parameter groups of the trainable parameters: the classifier at ``lr`` first, then the backbone at
    ``lr · backbone_lr_mult`` (one group when the multiplier is 1)."""
    trainable = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    if backbone_lr_mult == 1.0:
        return [{"params": [p for _, p in trainable], "lr": lr}]
    head = [p for k, p in trainable if CLASSIFIER.match(k)]
    backbone = [p for k, p in trainable if not CLASSIFIER.match(k)]
    return [g for g in ({"params": head, "lr": lr}, {"params": backbone, "lr": lr * backbone_lr_mult})
            if g["params"]]
