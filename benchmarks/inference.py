"""Inference speed on CPU: every model's eval-mode forward against its own training step and a plain baseline,
with denormal floats flushed (what ``train``, ``test`` and ``predict`` do) and kept (what they did before).

    python benchmarks/inference.py                              # batch 8, T = 100, 2 threads, 30 aging steps
    python benchmarks/inference.py --batch 4 --frames 32 --steps 10

Each model first trains ``--steps`` SGD steps on clips where half the samples have no second person (as in NTU),
so that BatchNorm statistics, attention gates and graph residuals hold trained values rather than their init.
Then, interleaved over ``--repeats`` rounds (the median is reported): a training step (forward + backward, train
mode) and an eval forward (``no_grad``, eval mode), in samples/s. MKL's threads keep the floating-point mode they
start with, so each denormal mode runs in child processes of its own, alternating with the other mode for
``--rounds`` rounds (medians over rounds). Printed ratios, all measured in the same run:

- ``eval/train``: eval forward against the same model's training step (goal: at least 1.5);
- ``GMAC/s × base``: eval throughput in multiply-accumulates per second against the plain conv stack of
  ``benchmarks/models.py`` (ten 1×1 + 9×1 conv/BN/ReLU stages, no graph) in eval mode: below 1 where a model does
  its work less efficiently than plain convolutions (denormals made MS-G3D's graph matmuls 8× slower);
- ``flush/kept``: eval forward with denormals flushed against kept.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

NUM_CLASSES, JOINTS, PERSONS, CHANNELS = 60, 25, 2, 3


def clips(batch: int, frames: int, seed: int):
    """(N, M, T, V, C) float32 clips with the second person absent (zeros) in every other sample, and labels."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, PERSONS, frames, JOINTS, CHANNELS, generator=g) * 0.5
    x[::2, 1] = 0
    return x, torch.randint(NUM_CLASSES, (batch,), generator=g)


def age(model, batch: int, frames: int, steps: int):
    """``model`` after ``steps`` SGD steps on ``clips`` (seeds 1, 2, ...), so that BatchNorm statistics, attention
    gates and graph residuals hold trained values rather than their init; left in train mode."""
    import torch
    import torch.nn.functional as F

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    for i in range(steps):
        xs, ys = clips(batch, frames, i + 1)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(xs), ys).backward()
        optimizer.step()
    return model


def measure(names: list[str], batch: int, frames: int, steps: int, iters: int, repeats: int) -> dict:
    """{model: {"train": samples/s, "eval": samples/s}} in this process's denormal mode."""
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, os.path.dirname(__file__))
    from models import build

    x, y = clips(batch, frames, 0)
    models = {}
    for name in names:
        torch.manual_seed(0)
        models[name] = age(build(name), batch, frames, steps)

    def train_step(model):
        model.train()
        F.cross_entropy(model(x), y).backward()
        model.zero_grad(set_to_none=True)

    @torch.no_grad()
    def eval_forward(model):
        model.eval()
        model(x)

    rates = {name: {"train": [], "eval": []} for name in names}
    for model in models.values():  # warm-up
        train_step(model)
        eval_forward(model)
    for _ in range(repeats):
        for name, model in models.items():
            for mode, run in (("train", train_step), ("eval", eval_forward)):
                start = time.perf_counter()
                for _ in range(iters):
                    run(model)
                rates[name][mode].append(batch * iters / (time.perf_counter() - start))
    return {name: {mode: statistics.median(r) for mode, r in modes.items()} for name, modes in rates.items()}


def child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.child == "flush":
        from trainer.runtime import flush_denormals

        flush_denormals()  # before any torch work, as the CLI does
    print(json.dumps(measure(args.models.split(","), args.batch, args.frames, args.steps, args.iters, args.repeats)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="dgstgcn,dualhead,msg3d,stgcn,stgcnpp")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--steps", type=int, default=30, help="SGD steps before timing")
    parser.add_argument("--iters", type=int, default=2, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="child processes per denormal mode, alternating")
    parser.add_argument("--child", choices=["flush", "kept"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    args.models = "baseline," + args.models
    import torch

    print(f"CPU, {args.threads} threads; torch {torch.__version__}; batch {args.batch} × {PERSONS} persons, "
          f"T = {args.frames}, V = {JOINTS}; {args.steps} SGD steps first; median of {args.repeats} × {args.iters}")
    runs: dict[str, list[dict]] = {"flush": [], "kept": []}
    for _ in range(args.rounds):  # the modes alternate, so that drift in the machine's load hits both alike
        for mode in runs:
            cmd = [sys.executable, __file__, "--child", mode] + [f"--{k}={getattr(args, k)}" for k in
                                                                  ("models", "batch", "frames", "steps", "iters",
                                                                   "repeats", "threads")]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    flush, kept = ({name: {kind: statistics.median(r[name][kind] for r in rounds) for kind in ("train", "eval")}
                    for name in rounds[0]} for rounds in (runs["flush"], runs["kept"]))
    sys.path.insert(0, os.path.dirname(__file__))
    from models import gmac

    work = {name: gmac(name, args.frames) for name in args.models.split(",")}
    base = flush["baseline"]["eval"] * work["baseline"]
    print(f"{'model':<10} {'GMAC/sample':>12} {'train/s':>9} {'eval/s':>9} {'eval/train':>11} {'GMAC/s × base':>14} "
          f"{'eval/s kept':>12} {'flush/kept':>11}")
    for name in args.models.split(","):
        f, k = flush[name], kept[name]
        print(f"{name:<10} {work[name]:>12.2f} {f['train']:>9.1f} {f['eval']:>9.1f} {f['eval'] / f['train']:>11.2f} "
              f"{f['eval'] * work[name] / base:>14.2f} {k['eval']:>12.1f} {f['eval'] / k['eval']:>11.2f}")


if __name__ == "__main__":
    main()
