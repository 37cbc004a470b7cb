"""Eval-mode speed of each model against its reference implementation's own module, with identical weights.

    python benchmarks/reference_speed.py --refs /tmp/refs                 # batch 8, T = 100, 2 threads, 5 repeats
    python benchmarks/reference_speed.py --refs /tmp/refs --models msg3d,stgcn --batch 4 --frames 64

``--refs DIR`` holds checkouts of the reference repositories at the commits of specs/models.md (never part of
this repository):

    mkdir -p DIR && cd DIR
    git clone https://github.com/kennymckormick/pyskl && git -C pyskl checkout 3f6795f
    git clone https://github.com/kenziyuliu/MS-G3D && git -C MS-G3D checkout 2f927f4
    git clone https://github.com/tailin1009/DualHead-Network && git -C DualHead-Network checkout a716203
    git clone https://github.com/Uason-Chen/CTR-GCN && git -C CTR-GCN checkout e13d758

A model whose checkout is missing is reported as skipped. The reference modules run unmodified: pyskl's GCN
files are imported without its package ``__init__``s, with a minimal stand-in for the few ``mmcv`` names they use;
MS-G3D, DualHead-Net and CTR-GCN import from their repository roots, as their own scripts do.

Each of our models (``build_model``, NTU layout, 2 persons, 60 classes) first trains ``--steps`` SGD steps, so that
BatchNorm statistics, gates and graph weights are not their init; its weights then go into the reference module
through ``export_reference_state_dict`` (loaded with ``strict=True``). Denormals are flushed at process start, as
``test`` and ``predict`` do, so both sides run in the same mode. Timed: an eval forward (``model.eval()``,
``torch.no_grad``) on the same clips, ours and the reference alternating in order, every model interleaved over
``--repeats`` rounds; samples/s are medians. ``max |Δ|`` is the largest difference of the logits (``(N, 60)``),
flagged when above 1e-4 × max(1, max |logit|).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from trainer.models import build_model, export_reference_state_dict
from trainer.runtime import flush_denormals

sys.path.insert(0, str(Path(__file__).parent))
from inference import NUM_CLASSES, PERSONS, age, clips  # noqa: E402

PYSKL_CONFIGS = {  # our name -> the pyskl backbone class and its NTU-60 config (configs/*/ntu60_xsub_3dkp/j.py)
    "dgstgcn": ("dgstgcn", "DGSTGCN", dict(
        gcn_ratio=0.125, gcn_ctr="T", gcn_ada="T", tcn_ms_cfg=[(3, 1), (3, 2), (3, 3), (3, 4), ("max", 3), "1x1"],
        graph_cfg=dict(layout="nturgb+d", mode="random", num_filter=8, init_off=.04, init_std=.02))),
    "stgcn": ("stgcn", "STGCN", dict(graph_cfg=dict(layout="nturgb+d", mode="stgcn_spatial"))),
    "stgcnpp": ("stgcn", "STGCN", dict(gcn_adaptive="init", gcn_with_res=True, tcn_type="mstcn",
                                       graph_cfg=dict(layout="nturgb+d", mode="spatial"))),
    "ctrgcn_pyskl": ("ctrgcn", "CTRGCN", dict(graph_cfg=dict(layout="nturgb+d", mode="spatial"))),
}
REPOS = {"msg3d": "MS-G3D", "dualhead": "DualHead-Network", "ctrgcn": "CTR-GCN"} | dict.fromkeys(PYSKL_CONFIGS, "pyskl")
SOURCES = {"msg3d": "msg3d", "dualhead": "dualhead", "ctrgcn": "ctrgcn"}  # the rest: pyskl


class PysklRecognizer(nn.Module):
    """pyskl's ``RecognizerGCN`` at test time, one clip: the backbone, then ``GCNHead`` (average pool over (T, V)
    per person, mean over persons, ``fc_cls``), under the checkpoint's key names."""

    def __init__(self, backbone: nn.Module, num_classes: int = NUM_CLASSES, channels: int = 256):
        super().__init__()
        self.backbone, self.cls_head = backbone, nn.Module()
        self.cls_head.fc_cls = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = self.backbone(x)  # N, M, C, T, V
        n, m, c = x.shape[:3]
        return self.cls_head.fc_cls(F.adaptive_avg_pool2d(x.flatten(0, 1), 1).reshape(n, m, c).mean(1))


def stub_module(name: str, **attrs) -> types.ModuleType:
    sys.modules[name] = module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def pyskl_backbone(root: Path, name: str) -> nn.Module:
    """A pyskl backbone, importing only ``pyskl/models/gcns`` and ``pyskl/utils/graph.py``: the packages'
    ``__init__``s (mmcv, the datasets, the CNNs) are replaced by bare packages, and ``mmcv`` (1.x) by the few names
    the GCN modules import, as far as these configs use them."""
    if "pyskl.models.builder" not in sys.modules:
        stub_module("mmcv")
        stub_module("mmcv.cnn", build_norm_layer=lambda cfg, channels: ("bn", nn.BatchNorm2d(channels)),
                    build_activation_layer=lambda cfg: getattr(nn, cfg["type"])())
        stub_module("mmcv.runner", load_checkpoint=None)
        stub_module("mmcv.utils", _BatchNorm=nn.modules.batchnorm._BatchNorm)
        for package in ("pyskl", "pyskl.utils", "pyskl.models", "pyskl.models.gcns"):
            stub_module(package, __path__=[str(root.joinpath(*package.split(".")))])
        stub_module("pyskl.models.builder", BACKBONES=types.SimpleNamespace(register_module=lambda: lambda cls: cls))
        sys.modules["pyskl.utils"].Graph = importlib.import_module("pyskl.utils.graph").Graph
        sys.modules["pyskl.utils"].cache_checkpoint = None
    file, cls, config = PYSKL_CONFIGS[name]
    return getattr(importlib.import_module(f"pyskl.models.gcns.{file}"), cls)(**config)


@contextlib.contextmanager
def imports_from(*paths: Path):
    """Import a reference's top-level modules (``model``, ``graph``, ``utils``, ...) from ``paths``; afterwards
    forget them, so that the next reference's modules of the same names load afresh."""
    sys.path[:0] = map(str, paths)
    try:
        yield
    finally:
        del sys.path[:len(paths)]
        for name, mod in list(sys.modules.items()):
            if any(str(getattr(mod, "__file__", None) or "").startswith(str(p)) for p in paths):
                del sys.modules[name]


def reference_model(name: str, root: Path) -> tuple[nn.Module, Callable]:
    """The reference module for our model ``name``, and a function from our (N, M, T, V, C) batch to its logits."""
    if name in PYSKL_CONFIGS:
        return PysklRecognizer(pyskl_backbone(root, name)), lambda model, x: model(x)
    to_nctvm = lambda x: x.permute(0, 4, 2, 3, 1).contiguous()  # noqa: E731
    if name == "ctrgcn":
        with imports_from(root):
            model = importlib.import_module("model.ctrgcn").Model(
                num_class=NUM_CLASSES, num_point=25, num_person=PERSONS, graph="graph.ntu_rgb_d.Graph",
                graph_args=dict(labeling_mode="spatial"))
        return model, lambda model, x: model(to_nctvm(x))
    if name == "msg3d":
        with imports_from(root):
            model = importlib.import_module("model.msg3d").Model(
                NUM_CLASSES, 25, PERSONS, 13, 6, graph="graph.ntu_rgb_d.AdjMatrixGraph")
        return model, lambda model, x: model(to_nctvm(x))
    with imports_from(root, root / "model" / "basic_modules"):  # DualHead: the score is the mean of its two heads
        model = importlib.import_module("model.dualhead_net").Model(
            NUM_CLASSES, 25, PERSONS, 9, 6, graph="graph_msg3d.ntu_rgb_d.AdjMatrixGraph")
    return model, lambda model, x: sum(model(to_nctvm(x))) / 2


def trained(name: str, batch: int, frames: int, steps: int) -> nn.Module:
    """Ours after ``steps`` SGD steps (benchmarks/inference.py's ``age``), in eval mode."""
    torch.manual_seed(0)
    return age(build_model(name, num_classes=NUM_CLASSES, num_persons=PERSONS), batch, frames, steps).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refs", type=Path, required=True, help="folder of the reference checkouts")
    parser.add_argument("--models", default="dgstgcn,stgcn,stgcnpp,ctrgcn_pyskl,msg3d,dualhead,ctrgcn")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="SGD steps before timing")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    flushing = flush_denormals()  # before any torch work, as the CLI does; ours and the references share the mode
    torch.set_num_threads(args.threads)

    print(f"CPU, {args.threads} threads; torch {torch.__version__}; denormals flushed: {flushing}; batch "
          f"{args.batch} × {PERSONS} persons, T = {args.frames}, V = 25; eval mode, no_grad; {args.steps} SGD "
          f"steps first; median of {args.repeats} rounds")
    x = clips(args.batch, args.frames, 0)[0]
    pairs, diffs = {}, {}
    for name in args.models.split(","):
        root = args.refs / REPOS[name]
        if not root.is_dir():
            print(f"{name}: skipped, no reference checkout at {root}")
            continue
        ours = trained(name, args.batch, args.frames, args.steps)
        reference, run_reference = reference_model(name, root)
        reference.load_state_dict(export_reference_state_dict(ours, SOURCES.get(name, "pyskl")), strict=True)
        reference.eval()
        sides = {"ours": lambda m=ours: m(x), "reference": lambda m=reference, f=run_reference: f(m, x)}
        with torch.no_grad():
            logits = {side: run() for side, run in sides.items()}  # also the warm-up
        diffs[name] = ((logits["ours"] - logits["reference"]).abs().max().item(), logits["ours"].abs().max().item())
        pairs[name] = sides

    rates = {name: {side: [] for side in sides} for name, sides in pairs.items()}
    with torch.no_grad():
        for r in range(args.repeats):
            for name, sides in pairs.items():
                for side in sorted(sides, reverse=r % 2 == 1):  # who goes first alternates
                    start = time.perf_counter()
                    sides[side]()
                    rates[name][side].append(args.batch / (time.perf_counter() - start))

    print(f"{'model':<13} {'reference':<17} {'ours/s':>8} {'ref/s':>8} {'ours/ref':>9} {'max |Δ|':>9} "
          f"{'max |logit|':>12}")
    for name, sides in rates.items():
        ours, ref = (statistics.median(sides[side]) for side in ("ours", "reference"))
        diff, scale = diffs[name]
        note = "" if diff <= 1e-4 * max(1.0, scale) else "  NOT IDENTICAL: the logits differ"
        print(f"{name:<13} {REPOS[name]:<17} {ours:>8.2f} {ref:>8.2f} {ours / ref:>9.2f} {diff:>9.1e} "
              f"{scale:>12.2f}{note}")


if __name__ == "__main__":
    main()
