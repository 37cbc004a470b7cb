"""Benchmark: training samples/s per architecture — one full step (forward, loss, backward, SGD update) exactly
as `skeltools train` runs it (DualHead: both heads' losses), at batch 16, T = 100, on the device present.

    python benchmarks/train_step.py                    # fp32; on CUDA also bf16 autocast and torch.compile
    python benchmarks/train_step.py --frames 32 --steps 3

Each figure comes with its ratio to a plain convolution stack (benchmarks/models.py's baseline: ST-GCN's
channel plan without a graph) trained the same way in the same run.
"""
from __future__ import annotations

import argparse
import time

import torch

from models import CHANNELS, JOINTS, NUM_CLASSES, PERSONS, build, sync
from trainer.models import list_models
from trainer.train import HeadsForward, compute_loss


def samples_per_second(name: str, device: torch.device, batch: int, frames: int, steps: int, *, bf16: bool,
                       compile_: bool) -> float:
    torch.manual_seed(0)
    model = build(name)
    heads_mu = getattr(model, "mu", None) if hasattr(model, "forward_heads") else None
    net = (HeadsForward(model) if heads_mu is not None else model).to(device).train()
    if compile_:
        net = torch.compile(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    criterion = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch, PERSONS, frames, JOINTS, CHANNELS, device=device)
    y = torch.randint(NUM_CLASSES, (batch,), device=device)

    def step():
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            loss, _ = compute_loss(net, x, y, criterion, heads_mu)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2 if not compile_ else 3):  # warm-up (and compilation)
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(list_models()))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    label = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    modes = {"fp32": (False, False)}
    if device.type == "cuda":
        modes |= {"bf16": (True, False), "bf16+compile": (True, True)}
    print(f"{label}; torch {torch.__version__}; batch {args.batch}, T = {args.frames}; full SGD training step")
    names = ["baseline", *args.models.split(",")]
    rates = {mode: {n: samples_per_second(n, device, args.batch, args.frames, args.steps, bf16=b, compile_=c)
                    for n in names} for mode, (b, c) in modes.items()}
    print(f"{'model':<10}" + "".join(f" {m + ' samples/s':>22} {'× baseline':>10}" for m in modes))
    for name in names:
        print(f"{name:<10}" + "".join(f" {rates[m][name]:>22.1f} {rates[m][name] / rates[m]['baseline']:>10.2f}"
                                      for m in modes))


if __name__ == "__main__":
    main()
