"""Inference speed per architecture on the CPU: eager torch (the baseline) vs ONNX Runtime on the same model.

    python benchmarks/predict.py                                   # every model, T = 64, batch 16, 2 threads
    python benchmarks/predict.py --arch dgstgcn,stgcn --frames 100

For each model (random weights, NTU layout, 2 persons, 60 classes): single-sample latency (ms, median over
repeats, batch 1) and batch throughput (samples/s, median, batch ``--batch``), eager ``torch.no_grad`` and ONNX
Runtime (CPUExecutionProvider, exported as ``skeltools export-model`` does with a dynamic batch), with the same
thread count; the ratio is eager time / ONNX Runtime time (> 1: ONNX Runtime is faster). Needs the onnx extra.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from trainer.models import build_model, list_models
from trainer.onnx_export import export_graph

PERSONS, JOINTS, CHANNELS, CLASSES = 2, 25, 3, 60


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default=",".join(list_models()), help="comma-separated models")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    print(f"CPU, {args.threads} threads, T = {args.frames}, batch {args.batch}, median of {args.repeats}; "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}")
    print(f"{'model':<10}{'eager 1 (ms)':>14}{'ORT 1 (ms)':>12}{'ratio':>7}{'eager (smp/s)':>15}{'ORT (smp/s)':>13}"
          f"{'ratio':>7}{'max |diff|':>12}")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.arch.split(","):
            torch.manual_seed(0)
            model = build_model(name, num_classes=CLASSES, num_persons=PERSONS).eval()
            path = Path(tmp) / f"{name}.onnx"
            export_graph(model, (PERSONS, args.frames, JOINTS, CHANNELS)).save(str(path))
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            figures, diff = [], 0.0
            for n in (1, args.batch):
                x = rng.standard_normal((n, PERSONS, args.frames, JOINTS, CHANNELS)).astype(np.float32)
                xt = torch.from_numpy(x)
                with torch.no_grad():
                    eager = median_seconds(lambda: model(xt), args.repeats)
                    diff = max(diff, float(np.abs(model(xt).numpy() - session.run(["logits"], {"clips": x})[0]).max()))
                onnx = median_seconds(lambda: session.run(["logits"], {"clips": x}), args.repeats)
                figures.append((eager, onnx, n))
            (e1, o1, _), (eb, ob, b) = figures
            print(f"{name:<10}{e1 * 1e3:>14.1f}{o1 * 1e3:>12.1f}{e1 / o1:>7.2f}{b / eb:>15.1f}{b / ob:>13.1f}"
                  f"{eb / ob:>7.2f}{diff:>12.1e}", flush=True)


if __name__ == "__main__":
    main()
