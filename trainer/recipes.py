"""Training recipes: one typed preset per architecture, reproducing its reference recipe.

A recipe holds everything about *how* a model is trained and tested (optimiser, schedule, epochs, batch, clip
sampling, augmentation, loss, clip fusion); the architecture's own arguments live in the model registry. Every field
can be overridden (``resolve_recipe(..., overrides={"epochs": 5})`` or ``skeltools train --epochs 5 --set
rotation=0.1``). The learning rate scales linearly with the global batch size: ``lr = base_lr * batch_size /
reference_batch_size`` unless ``lr`` is given explicitly, and the resolved recipe records which.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Recipe:
    arch: str
    source: str  # where the numbers come from
    # optimisation: SGD
    base_lr: float
    reference_batch_size: int  # the global batch size base_lr belongs to
    batch_size: int
    epochs: int
    weight_decay: float
    momentum: float = 0.9
    nesterov: bool = True
    schedule: str = "cosine"  # "cosine": per-iteration cosine to 0 | "step": x gamma at each milestone epoch
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: int = 0
    lr: float | None = None  # explicit learning rate: no batch-size scaling
    # data
    sampling: str = "uniform"  # "uniform": UniformSample clips | "full": whole sequences padded to clip_len
    #                            | "crop_resize": CTR-GCN's crop linearly resized to clip_len
    clip_len: int = 100
    test_clips: int = 10
    pad_mode: str = "loop"  # how "full" sampling pads short sequences: "loop" | "zero"
    rotation: float = 0.0  # RandomRot theta in radians (0: off)
    # loss and scores
    loss: str = "ce"  # "ce" | "focal" (class-balanced)
    clip_fusion: str = "prob"  # multi-clip test: mean of softmax ("prob") or of logits ("logit")
    label_smoothing: float = 0.0
    best_metric: str = "top1"  # validation metric that picks best.pt: "top1" | "mean_class" (long-tailed data)
    seed: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def effective_lr(self) -> float:
        """The learning rate actually used: explicit ``lr``, else base_lr scaled linearly with the batch size."""
        return self.lr if self.lr is not None else self.base_lr * self.batch_size / self.reference_batch_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"effective_lr": self.effective_lr}

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path) -> "Recipe":
        data = json.loads(Path(path).read_text())
        data.pop("effective_lr", None)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _dgstgcn(dataset: str, split: str) -> Recipe:
    xview = split.startswith("xview")
    return Recipe(
        arch="dgstgcn", source="pyskl configs/dgstgcn/*_3dkp/{j,b,jm,bm}.py",
        base_lr=0.1, reference_batch_size=128, batch_size=128, epochs=150, weight_decay=5e-4,
        schedule="cosine", sampling="uniform", clip_len=100, test_clips=10, rotation=0.3 if xview else 0.2,
        clip_fusion="prob",
        notes=("reference batch: 16 per GPU x 8 GPUs (pyskl README; the config comment says 4 GPUs)",
               "NTU60 X-View also aligns the spine: convert with --align-spine for that split"),
    )


def _stgcn(dataset: str, split: str) -> Recipe:
    return Recipe(
        arch="stgcn", source="pyskl configs/stgcn/stgcn_pyskl_*_3dkp/j.py (16 epochs x RepeatDataset 5)",
        base_lr=0.1, reference_batch_size=128, batch_size=128, epochs=80, weight_decay=5e-4,
        schedule="cosine", sampling="uniform", clip_len=100, test_clips=10, clip_fusion="prob",
    )


def _stgcnpp(dataset: str, split: str) -> Recipe:
    return dataclasses.replace(_stgcn(dataset, split), arch="stgcnpp",
                               source="pyskl configs/stgcn++/stgcn++_*_3dkp/j.py (16 epochs x RepeatDataset 5)")


def _dualhead(dataset: str, split: str) -> Recipe:
    return Recipe(
        arch="dualhead", source="DualHead-Network config/ntu-xsub/train_joint.yaml, main_dualhead.py",
        base_lr=0.05, reference_batch_size=64, batch_size=64, epochs=120, weight_decay=5e-4,
        schedule="step", milestones=(40, 60, 80), sampling="full", clip_len=300, test_clips=1, pad_mode="loop",
        clip_fusion="logit", seed=1,
        notes=("loss: mean of the fine and coarse heads' cross-entropy; score: their mean logits",
               "epochs: the argparse default 120 (the repository scripts pass 300; the LR is 5e-5 after epoch 80)"),
    )


def _msg3d(dataset: str, split: str) -> Recipe:
    ntu120 = dataset == "ntu120"
    return Recipe(
        arch="msg3d", source="MS-G3D config/nturgbd*-cross-subject/train_joint.yaml",
        base_lr=0.05, reference_batch_size=32, batch_size=32, epochs=60 if ntu120 else 50, weight_decay=5e-4,
        schedule="step", milestones=(30, 50) if ntu120 else (30, 40), sampling="full", clip_len=300,
        test_clips=1, pad_mode="loop", clip_fusion="logit",
        notes=("the reference accumulates 2 forward batches of 16; the optimiser sees the same batch of 32",),
    )


def _ctrgcn(dataset: str, split: str) -> Recipe:
    return Recipe(
        arch="ctrgcn", source="Uason-Chen/CTR-GCN config/nturgbd*/default.yaml, main.py, feeders/tools.py",
        base_lr=0.1, reference_batch_size=64, batch_size=64, epochs=65, weight_decay=4e-4, schedule="step",
        milestones=(35, 55), warmup_epochs=5, sampling="crop_resize", clip_len=64, test_clips=1, rotation=0.3,
        clip_fusion="logit",
        notes=("data: the ctrgcn preset's stores; crops p ~ U(0.5, 1) in training, the centre 0.95 at test",
               "warm-up: the reference raises the LR once per epoch (lr * (epoch + 1) / 5), here per iteration",
               "4-stream ensemble: ensemble --weights ctrgcn --on logits (0.6, 0.6, 0.4, 0.4 on J, B, JM, BM)"),
    )


def _ctrgcn_pyskl(dataset: str, split: str) -> Recipe:
    return dataclasses.replace(_stgcn(dataset, split), arch="ctrgcn_pyskl",
                               source="pyskl configs/ctrgcn/ctrgcn_pyskl_*_3dkp/j.py (16 epochs x RepeatDataset 5)")


RECIPES = {"ctrgcn": _ctrgcn, "ctrgcn_pyskl": _ctrgcn_pyskl, "dgstgcn": _dgstgcn,
           "dualhead": _dualhead, "msg3d": _msg3d, "stgcn": _stgcn, "stgcnpp": _stgcnpp}
_FIELDS = {f.name: f for f in fields(Recipe)}


def _coerce(name: str, value: Any, current: Any) -> Any:
    """Turn a CLI string into the type of the field it overrides."""
    if not isinstance(value, str):
        return tuple(value) if isinstance(value, list) else value
    if name == "lr" or isinstance(current, float):
        return float(value)
    if isinstance(current, bool):
        if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"recipe field {name!r} takes true or false, not {value!r}")
        return value.lower() in ("1", "true", "yes")
    if isinstance(current, int):
        return int(value)
    if isinstance(current, tuple):
        return tuple(int(v) for v in value.split(",") if v.strip()) if name == "milestones" else tuple(value.split(";"))
    return value


def resolve_recipe(arch: str, *, dataset: str = "ntu60", split: str = "xsub_train",
                   overrides: dict[str, Any] | None = None) -> Recipe:
    """The reference recipe of ``arch`` for a dataset and split, with ``overrides`` applied and checked."""
    if arch not in RECIPES:
        raise ValueError(f"no recipe for {arch!r}; known: {', '.join(sorted(RECIPES))}")
    recipe = RECIPES[arch](dataset, split)
    changes = {}
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in _FIELDS or name in ("arch", "source"):
            raise ValueError(f"unknown recipe field {name!r}; fields: {', '.join(sorted(set(_FIELDS) - {'arch', 'source'}))}")
        changes[name] = _coerce(name, value, getattr(recipe, name))
    recipe = dataclasses.replace(recipe, **changes)
    _check(recipe)
    return recipe


_CHOICES = {"schedule": ("cosine", "step"), "sampling": ("uniform", "full", "crop_resize"), "pad_mode": ("loop", "zero"),
            "loss": ("ce", "focal"), "best_metric": ("top1", "mean_class"), "clip_fusion": ("prob", "logit")}


def _check(r: Recipe) -> None:
    problems = [f"{name} {getattr(r, name)!r} is not {' or '.join(choices)}"
                for name, choices in _CHOICES.items() if getattr(r, name) not in choices]
    if min(r.batch_size, r.epochs, r.clip_len, r.test_clips, r.reference_batch_size) < 1:
        problems.append("batch_size, epochs, clip_len, test_clips and reference_batch_size must be >= 1")
    if r.effective_lr <= 0:
        problems.append("the learning rate must be positive")
    if list(r.milestones) != sorted(r.milestones):
        problems.append(f"milestones {r.milestones} are not increasing")
    if problems:
        raise ValueError("invalid recipe: " + "; ".join(problems))
