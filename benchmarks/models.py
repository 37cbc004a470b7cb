"""Training throughput of every registered model: forward + backward samples/s on the device present.

    python benchmarks/models.py                          # batch 64, T = 100, NTU layout, 2 persons
    python benchmarks/models.py --batch 4 --frames 32    # small enough for a CPU

Models are interleaved within each repeat and the median over repeats is reported, so that drift on a shared
machine hits every model alike. Each figure is also given as a ratio to a plain convolution stack measured in
the same run (ten 1×1 + 9×1 conv/BN/ReLU pairs at 64/128/256 channels: ST-GCN without its graph). On CUDA it
also reports bf16 autocast throughput and checks the CUDA fp32 output against CPU fp32.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from trainer.models import build_model, list_models
from trainer.models.layers import PYSKL_STAGES, DataBN, StackedGCN

NUM_CLASSES, JOINTS, PERSONS, CHANNELS = 60, 25, 2, 3


def plain_conv_stack() -> nn.Module:
    """The baseline: pyskl's ten-stage channel/stride plan with a 1×1 and a 9×1 conv per stage, no graph."""
    blocks, c_in = [], CHANNELS
    for c_out, stride in PYSKL_STAGES:
        blocks.append(nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out), nn.ReLU(),
                                    nn.Conv2d(c_out, c_out, (9, 1), (stride, 1), (4, 0)), nn.BatchNorm2d(c_out),
                                    nn.ReLU()))
        c_in = c_out
    return StackedGCN(DataBN(JOINTS, CHANNELS), blocks, c_in, NUM_CLASSES)


def build(name: str) -> nn.Module:
    if name == "baseline":
        return plain_conv_stack()
    return build_model(name, num_classes=NUM_CLASSES, num_persons=PERSONS)


def gmac(name: str, frames: int) -> float:
    """Multiply-accumulates per sample (conv, matmul, einsum), counted on meta tensors."""
    with torch.device("meta"):
        model, x = build(name), torch.empty(1, PERSONS, frames, JOINTS, CHANNELS)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2e9


def step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool) -> None:
    with torch.autocast(x.device.type, torch.bfloat16, enabled=bf16):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    model.zero_grad(set_to_none=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(names, device, batch, frames, iters, warmup, repeats, bf16) -> dict[str, float]:
    """Median samples/s per model over ``repeats`` rounds of ``iters`` steps, models interleaved."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, PERSONS, frames, JOINTS, CHANNELS, generator=g).to(device)
    y = torch.randint(NUM_CLASSES, (batch,), generator=g).to(device)
    models = {name: build(name).to(device).train() for name in names}
    for model in models.values():
        for _ in range(warmup):
            step(model, x, y, bf16)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name, model in models.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(iters):
                step(model, x, y, bf16)
            sync(device)
            rates[name].append(batch * iters / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}


@torch.no_grad()
def cuda_matches_cpu(name: str, frames: int) -> float:
    """Largest |CUDA - CPU| of the fp32 eval-mode logits, relative to the largest |logit|."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    model = build(name).eval()
    x = torch.randn(2, PERSONS, frames, JOINTS, CHANNELS)
    cpu = model(x)
    gpu = model.cuda()(x.cuda()).cpu()
    return ((gpu - cpu).abs().max() / cpu.abs().max()).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(list_models()), help="comma-separated registered names")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--iters", type=int, default=5, help="steps per timing")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="CUDA vs CPU, relative")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    names = ["baseline", *args.models.split(",")]
    label = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{label}; torch {torch.__version__}; batch {args.batch} × {PERSONS} persons, T = {args.frames}, "
          f"V = {JOINTS}; forward + backward; median of {args.repeats} × {args.iters} steps")

    modes = {"fp32": False} | ({"bf16": True} if device.type == "cuda" else {})
    results = {mode: throughput(names, device, args.batch, args.frames, args.iters, args.warmup, args.repeats, bf16)
               for mode, bf16 in modes.items()}
    header = f"{'model':<10} {'params':>10} {'GMAC/sample':>12}" + "".join(
        f" {mode + ' samples/s':>17} {'× baseline':>10}" for mode in modes)
    print(header)
    for name in names:
        params = sum(p.numel() for p in build(name).parameters())
        row = f"{name:<10} {params:>10,} {gmac(name, args.frames):>12.2f}"
        for mode in modes:
            rate = results[mode][name]
            row += f" {rate:>17.1f} {rate / results[mode]['baseline']:>10.2f}"
        print(row)

    if device.type == "cuda":
        worst = {name: cuda_matches_cpu(name, args.frames) for name in names}
        for name, err in worst.items():
            print(f"CUDA vs CPU fp32 {name}: max relative difference {err:.2e}")
        if max(worst.values()) > args.tolerance:
            sys.exit(f"CUDA output differs from CPU by more than {args.tolerance}")


if __name__ == "__main__":
    main()
