"""Training recipes: one typed preset per architecture and dataset/split, reproducing its reference recipe, and the
table of the papers' cells (what each protocol trains, fuses and reports).

A recipe holds everything about *how* a model is trained and tested (optimiser, schedule, epochs, batch, clip
sampling, augmentation, loss, clip fusion); the architecture's own arguments live in the model registry (a cell may
name reference values for them, ``reference_model_kwargs``). Every field can be overridden
(``resolve_recipe(..., overrides={"epochs": 5})`` or ``skeltools train --epochs 5 --set rotation=0.1``). The
learning rate scales linearly with the global batch size: ``lr = base_lr * batch_size / reference_batch_size``
unless ``lr`` is given explicitly, and the resolved recipe records which.

Two modes: ``repo`` (default) follows the reference repository's configuration, ``paper`` the values the paper
states, where they differ (``PAPER_CHANGES``; every difference is listed in the README). A cell (``CELLS``) is one
number of a paper's table: architecture, dataset and split (and a variant: the 2D HRNet poses, or pre-training on
another dataset), the streams (modalities) it trains, how the paper fuses them, and the numbers it reports.
Adding an architecture is one recipe function in ``RECIPES`` (plus its cells, if a paper reports it).
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
    backbone_lr_mult: float = 1.0  # LR multiplier of every parameter but the classifier (fine-tuning)
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
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Recipe":
        """The inverse of ``to_dict`` (lists back to tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "effective_lr"})


LONG_TAILED = ("babel60", "babel120", "smarthome", "smarthome_cv")  # reported by mean per-class accuracy


def _dgstgcn(dataset: str, split: str) -> Recipe:
    xview = split.startswith("xview")
    recipe = Recipe(
        arch="dgstgcn", source="pyskl configs/dgstgcn/*_3dkp/{j,b,jm,bm}.py",
        base_lr=0.1, reference_batch_size=128, batch_size=128, epochs=150, weight_decay=5e-4,
        schedule="cosine", sampling="uniform", clip_len=100, test_clips=10, rotation=0.3 if xview else 0.2,
        clip_fusion="prob",
        notes=("reference batch: 16 per GPU x 8 GPUs (pyskl README; the config comment says 4 GPUs)",
               "NTU60 X-View also aligns the spine: convert with --align-spine for that split"),
    )
    # pyskl has configs for NTU only; the other datasets follow DG-STGCN section 4.2/4.4 and the NTU config.
    if dataset == "kinetics400":
        return dataclasses.replace(recipe, source="DG-STGCN paper 4.2, 4.4 + pyskl configs/dgstgcn/ntu60_xsub_3dkp",
                                   notes=("2D OpenPose poses: no rotation",))
    if dataset.startswith("babel"):
        return dataclasses.replace(
            recipe,
            source="DG-STGCN paper 4.4 (BABEL's class-balanced focal loss) + pyskl configs/dgstgcn/ntu60_xsub_3dkp",
            loss="focal", best_metric="mean_class", notes=("reported by mean per-class accuracy (Table 6)",))
    if dataset.startswith("smarthome"):
        return dataclasses.replace(
            recipe, source="DG-STGCN paper 4.4 (input length 200) + pyskl configs/dgstgcn/ntu60_xsub_3dkp",
            clip_len=200, best_metric="mean_class",
            notes=("reported by mean per-class accuracy (Table 7); RandomRot 0.2 of the NTU X-Sub config",
                   "fine-tuning after pre-training (skeltools train --init-from): the paper gives no other LR"))
    return recipe


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
    recipe = Recipe(
        arch="dualhead", source="DualHead-Network config/ntu-xsub/train_joint.yaml, main_dualhead.py",
        base_lr=0.05, reference_batch_size=64, batch_size=64, epochs=120, weight_decay=5e-4,
        schedule="step", milestones=(40, 60, 80), sampling="full", clip_len=300, test_clips=1, pad_mode="loop",
        clip_fusion="logit", seed=1,
        notes=("loss: mean of the fine and coarse heads' cross-entropy; score: their mean logits",
               "epochs: the argparse default 120 (the repository scripts pass 300; the LR is 5e-5 after epoch 80)"),
    )
    if dataset == "kinetics400":  # the repository has no Kinetics configuration: the paper's values
        return dataclasses.replace(
            recipe, source="DualHead-Net paper 4.2 (the repository has no Kinetics config)", base_lr=0.1,
            reference_batch_size=128, batch_size=128, epochs=80, weight_decay=1e-4, milestones=(45, 55),
            notes=recipe.notes[:1])
    return recipe


def _msg3d(dataset: str, split: str) -> Recipe:
    if dataset == "kinetics400":
        return Recipe(
            arch="msg3d", source="MS-G3D config/kinetics-skeleton/train_joint.yaml",
            base_lr=0.1, reference_batch_size=128, batch_size=128, epochs=65, weight_decay=3e-4,
            schedule="step", milestones=(45, 55), sampling="full", clip_len=300, test_clips=1, pad_mode="loop",
            clip_fusion="logit", notes=("the reference accumulates 2 forward batches of 64",))
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
RECIPE_MODES = ("repo", "paper")
NTU = ("ntu60", "ntu120")
# Where the paper states other values than its repository: (arch, datasets) -> the paper's values. A paper-mode
# recipe is the repository's with these replaced (what the paper leaves unsaid stays the repository's).
PAPER_CHANGES: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {
    ("dualhead", NTU): dict(base_lr=0.1, milestones=(40, 60), epochs=80,
                            source="DualHead-Net paper 4.2 (lr 0.1, x0.1 at epochs 40 and 60, 80 epochs)"),
}
# Model arguments a reference configuration sets for a dataset (other datasets: the model's defaults).
REFERENCE_MODEL_KWARGS: dict[tuple[str, str], dict[str, Any]] = {
    ("msg3d", "kinetics400"): {"num_gcn_scales": 8, "num_g3d_scales": 8},  # config/kinetics-skeleton
}


def reference_model_kwargs(arch: str, dataset: str) -> dict[str, Any]:
    """The architecture arguments the reference sets for ``dataset`` (empty: the model's defaults)."""
    return dict(REFERENCE_MODEL_KWARGS.get((arch, dataset), {}))


def paper_changes(arch: str, dataset: str) -> dict[str, Any]:
    """The fields (and source) a ``paper`` recipe changes from the ``repo`` one for ``arch`` on ``dataset``."""
    return next((dict(c) for (a, datasets), c in PAPER_CHANGES.items() if a == arch and dataset in datasets), {})


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
                   overrides: dict[str, Any] | None = None, mode: str = "repo") -> Recipe:
    """The reference recipe of ``arch`` for a dataset and split (``mode``: the ``repo``'s configuration or the
    ``paper``'s stated values), with ``overrides`` applied and checked."""
    if arch not in RECIPES:
        raise ValueError(f"no recipe for {arch!r}; known: {', '.join(sorted(RECIPES))}")
    if mode not in RECIPE_MODES:
        raise ValueError(f"recipe mode {mode!r}: expected {' or '.join(RECIPE_MODES)}")
    recipe = RECIPES[arch](dataset, split)
    if mode == "paper":
        recipe = dataclasses.replace(recipe, **paper_changes(arch, dataset))
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
    if r.backbone_lr_mult < 0:
        problems.append("backbone_lr_mult must be >= 0")
    if list(r.milestones) != sorted(r.milestones):
        problems.append(f"milestones {r.milestones} are not increasing")
    if problems:
        raise ValueError("invalid recipe: " + "; ".join(problems))


# ---------------------------------------------------------------------------------------------------------------
# The papers' cells

METRICS = ("top1", "top5", "mean_class")


@dataclass(frozen=True)
class Reported:
    """One number a paper reports for a cell: ``streams`` fused with ``weights`` (one stream: no fusion), and the
    metric values in percent (``top1`` / ``top5`` / ``mean_class``)."""

    name: str  # as the paper writes it: "J", "B", "2s", "4s"
    streams: tuple[str, ...]
    weights: tuple[float, ...]
    values: tuple[tuple[str, float], ...]
    table: str

    def value(self, metric: str) -> float | None:
        return dict(self.values).get(metric)

    @property
    def fused(self) -> bool:
        return len(self.streams) > 1


@dataclass(frozen=True)
class Cell:
    """A cell of a paper's table: train ``streams`` (modalities) of ``arch`` on ``dataset``'s ``split`` protocol
    (``variant``: ``hrnet`` for the 2D HRNet poses, ``pretrained`` for pre-training on the ``pretrain`` cell's
    data first), fuse them on ``fuse_on`` scores, report ``metric``."""

    arch: str
    dataset: str  # the store's dataset attribute
    split: str  # the protocol: {split}_train / _test columns
    streams: tuple[str, ...]
    reported: tuple[Reported, ...]
    source: str
    layout: str = "ntu25"
    variant: str = ""
    fuse_on: str = "probs"
    metric: str = "top1"
    pretrain: str | None = None  # name of the cell whose recipe and data pre-train each stream
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.arch} {self.dataset}/{self.split}{'-' + self.variant if self.variant else ''}"

    @property
    def target(self) -> str:
        """``dataset/split[-variant]``, as ``skeltools reproduce`` takes it."""
        return self.name.split(" ", 1)[1]

    def recipe(self, mode: str = "repo", overrides: dict[str, Any] | None = None) -> Recipe:
        return resolve_recipe(self.arch, dataset=self.dataset, split=f"{self.split}_train", overrides=overrides,
                              mode=mode)

    def model_kwargs(self) -> dict[str, Any]:
        return reference_model_kwargs(self.arch, self.dataset)


def _reported(table: str, **numbers) -> tuple[Reported, ...]:
    """``J=90.3, B=..., 2s=..., 4s=...`` (a number is top-1, or a dict of metrics) as Reported entries; 2s fuses
    J and B, 4s all four streams, with pyskl's weights (1:1, 2:2:1:1) unless ``weights4`` is given."""
    streams = {"J": ("j",), "B": ("b",), "2s": ("j", "b"), "4s": ("j", "b", "jm", "bm")}
    weights4 = numbers.pop("weights4", (2.0, 2.0, 1.0, 1.0))
    weights = {"J": (1.0,), "B": (1.0,), "2s": (1.0, 1.0), "4s": weights4}
    out = []
    for key, value in numbers.items():
        name = key.replace("s2", "2s").replace("s4", "4s")
        values = value if isinstance(value, dict) else {"top1": value}
        out.append(Reported(name, streams[name], weights[name], tuple(values.items()), table))
    return tuple(out)


_DG = "DG-STGCN paper"
_DH = "DualHead-Net paper"
_NTU_3D = (("ntu60", "xsub"), ("ntu60", "xview"), ("ntu120", "xsub"), ("ntu120", "xset"))


def _dgstgcn_cells() -> list[Cell]:
    four = ("j", "b", "jm", "bm")
    nums_3d = ((92.9, 93.2), (97.3, 97.5), (89.2, 89.6), (91.2, 91.4))
    nums_2d = ((93.9, 94.1), (98.5, 98.6), (87.3, 87.5), (91.1, 91.3))
    cells = [Cell("dgstgcn", ds, sp, four, _reported("DG-STGCN Table 5", s2=a, s4=b),
                  f"{_DG} 4.4, Table 5; pyskl configs/dgstgcn/{ds}_{sp}_3dkp")
             for (ds, sp), (a, b) in zip(_NTU_3D, nums_3d)]
    cells += [Cell("dgstgcn", ds, sp, four, _reported("DG-STGCN Table 5 (*)", s2=a, s4=b),
                   f"{_DG} 4.4, Table 5 (* rows: HRNet 2D poses of PoseC3D; convert pyskl)", layout="coco17",
                   variant="hrnet")
              for (ds, sp), (a, b) in zip(_NTU_3D, nums_2d)]
    cells.append(Cell("dgstgcn", "kinetics400", "kinetics", four, _reported("DG-STGCN Table 5", s2=39.5, s4=40.3),
                      f"{_DG} 4.1, 4.4, Table 5 (st-gcn's OpenPose skeletons)", layout="coco18"))
    babel = {"babel60": ((36.2, 39.0), (38.1, 40.0)), "babel120": ((32.3, 31.3), (33.7, 32.8))}
    for ds, ((bm, bt), (fm, ft)) in babel.items():
        cells.append(Cell("dgstgcn", ds, "babel", ("j", "b"),
                          _reported("DG-STGCN Table 6", B={"mean_class": bm, "top1": bt},
                                    s2={"mean_class": fm, "top1": ft}),
                          f"{_DG} 4.4, Table 6 (class-balanced focal loss)", metric="mean_class"))
    lost = ("Table 7's CV1 column did not survive the paper's text extraction (leaderboards list 41.8 for "
            "DG-STGCN CV1, unverified); no number is compared",)
    pre = "dgstgcn ntu120/xset"
    for ds, sp, number in (("smarthome", "cs", 64.8), ("smarthome_cv", "cv1", None)):
        reported = _reported("DG-STGCN Table 7", s2={"mean_class": number})
        cells.append(Cell("dgstgcn", ds, sp, ("j", "b"), reported, f"{_DG} 4.4, Table 7 (3D pose v1.2, length 200)",
                          layout="smarthome13", metric="mean_class", notes=() if number else lost))
    for ds, sp, number in (("smarthome", "cs", 65.1), ("smarthome_cv", "cv1", None)):
        reported = _reported("DG-STGCN Table 7 (*)", s2={"mean_class": number})
        cells.append(Cell("dgstgcn", ds, sp, ("j", "b"), reported,
                          f"{_DG} 4.4, Table 7 (*: each stream pre-trained on NTU120 X-Set, 25 -> 13 joints)",
                          layout="smarthome13", variant="pretrained", metric="mean_class", pretrain=pre,
                          notes=() if number else lost))
    return cells


def _dualhead_cells() -> list[Cell]:
    numbers = (((90.3, 90.7, 91.7, 92.0), "Table 1"), ((96.1, 95.5, 96.5, 96.6), "Table 1"),
               ((84.6, 86.7, 87.9, 88.2), "Table 2"), ((85.9, 87.9, 89.1, 89.3), "Table 2"))
    fusion = "streams fused by the sum of their logits (MS-G3D's ensemble; the paper gives no weights)"
    cells = [Cell("dualhead", ds, sp, ("j", "b", "jm", "bm"),
                  _reported(f"DualHead-Net {table}", J=j, B=b, s2=s2, s4=s4, weights4=(1.0, 1.0, 1.0, 1.0)),
                  f"{_DH} 4.2, 4.3, {table}", fuse_on="logits", notes=(fusion,))
             for (ds, sp), ((j, b, s2, s4), table) in zip(_NTU_3D, numbers)]
    k = {"J": (36.6, 59.5), "B": (35.7, 58.7), "s2": (38.3, 61.1), "s4": (38.4, 61.3)}
    cells.append(Cell("dualhead", "kinetics400", "kinetics", ("j", "b", "jm", "bm"),
                      _reported("DualHead-Net Table 3", weights4=(1.0, 1.0, 1.0, 1.0),
                                **{n: {"top1": t1, "top5": t5} for n, (t1, t5) in k.items()}),
                      f"{_DH} 4.2, 4.3, Table 3", layout="coco18", fuse_on="logits", notes=(fusion,)))
    return cells


def _baseline_cells() -> list[Cell]:
    quoted = "number as quoted in DG-STGCN Table 5"
    msg3d = (91.5, 96.2, 86.9, 88.4)
    cells = [Cell("msg3d", ds, sp, ("j", "b"), _reported("DG-STGCN Table 5, DualHead-Net Tables 1-2", s2=n),
                  f"MS-G3D config/nturgbd*; {quoted}", fuse_on="logits")
             for (ds, sp), n in zip(_NTU_3D, msg3d)]
    cells.append(Cell("msg3d", "kinetics400", "kinetics", ("j", "b"),
                      _reported("DG-STGCN Table 5, DualHead-Net Table 3", s2={"top1": 38.0, "top5": 60.9}),
                      "MS-G3D config/kinetics-skeleton", layout="coco18", fuse_on="logits"))
    stgcn = (81.5, 88.3, 70.7, 73.2)
    cells += [Cell("stgcn", ds, sp, ("j",), _reported("DG-STGCN Table 5", J=n),
                   f"pyskl configs/stgcn/stgcn_pyskl_{ds}_{sp}_3dkp; {quoted}",
                   notes=("the number is the original ST-GCN (Yan et al. 2018, its own recipe); pyskl's recipe "
                          "trains the same network to higher accuracy",))
              for (ds, sp), n in zip(_NTU_3D, stgcn)]
    for variant, layout, numbers in (("", "ntu25", (92.6, 97.4, 88.6, 90.8)),
                                     ("hrnet", "coco17", (93.2, 98.5, 86.4, 90.3))):
        cells += [Cell("stgcnpp", ds, sp, ("j", "b", "jm", "bm"), _reported("DG-STGCN Table 5", s4=n),
                       f"pyskl configs/stgcn++/stgcn++_{ds}_{sp}_{'hrnet' if variant else '3dkp'}; {quoted}",
                       layout=layout, variant=variant)
                  for (ds, sp), n in zip(_NTU_3D, numbers)]
    return cells


CELLS: dict[str, Cell] = {c.name: c for c in (*_dgstgcn_cells(), *_dualhead_cells(), *_baseline_cells())}


def find_cell(arch: str, target: str) -> Cell:
    """The cell ``arch`` ``dataset/split[-variant]`` (e.g. ``dgstgcn smarthome_cv/cv1-pretrained``)."""
    name = f"{arch} {target}"
    if name not in CELLS:
        known = sorted(c.target for c in CELLS.values() if c.arch == arch)
        raise ValueError(f"no cell {target!r} for {arch}; known: {', '.join(known) or 'none'}")
    return CELLS[name]


def select_cells(arch: str | None = None, dataset: str | None = None) -> list[Cell]:
    """The cells of ``arch`` and/or ``dataset`` (``dataset`` matches the store dataset or its start: ``ntu``)."""
    return [c for c in CELLS.values()
            if (arch is None or c.arch == arch) and (dataset is None or c.dataset.startswith(dataset))]


def _settings(r: Recipe) -> str:
    schedule = "cosine" if r.schedule == "cosine" else f"x{r.gamma:g}@{','.join(map(str, r.milestones))}"
    parts = [f"lr {r.effective_lr:g}", f"batch {r.batch_size}", f"{r.epochs} ep {schedule}", f"wd {r.weight_decay:g}",
             f"{'uniform' if r.sampling == 'uniform' else 'whole'} {r.clip_len}f x{r.test_clips}"]
    if r.loss != "ce":
        parts.append(f"{r.loss} loss")
    return ", ".join(parts)


def format_reported(r: Reported) -> str:
    """``2s 38.1/40.0 (mean_class/top1)``; a number the paper's text lost reads ``n/a``."""
    numbers = "/".join("n/a" if v is None else f"{v:g}" for _, v in r.values)
    return f"{r.name} {numbers} ({'/'.join(k for k, _ in r.values)})"


def recipes_table(cells: list[Cell], mode: str = "repo") -> str:
    """One line per cell: name, streams and fusion, key recipe settings, the paper's numbers, the recipe source."""
    lines = []
    for c in cells:
        r = c.recipe(mode)
        streams = "+".join(c.streams) + (f" on {c.fuse_on}" if len(c.streams) > 1 else "")
        extra = f", pre-trained: {c.pretrain}" if c.pretrain else ""
        lines.append(f"{c.name}\n  streams {streams}{extra}; metric {c.metric}; layout {c.layout}\n"
                     f"  recipe ({mode}) {_settings(r)}\n  paper  {'; '.join(map(format_reported, c.reported))}\n"
                     f"  source recipe: {r.source}; cell: {c.source}")
        lines.extend(f"  note   {n}" for n in c.notes)
    return "\n".join(lines)
