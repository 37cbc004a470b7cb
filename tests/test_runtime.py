"""What the trainer's entry points set up: checkpoints that cannot run code, and denormals flushed on CPU."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from click.testing import CliRunner

import trainer.runtime as runtime
from skeltools.cli import main
from trainer.recipes import resolve_recipe
from trainer.train import RunConfig, train

FAST = dict(epochs=1, batch_size=4, lr=0.05, clip_len=16, test_clips=1)
TRAIN_ARGS = ["--arch", "stgcn", "--epochs", "1", "--batch-size", "4", "--lr", "0.05", "--clip-len", "16",
              "--set", "test_clips=1", "--workers", "0"]


@pytest.fixture(scope="module")
def run(ntu_train_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("runtime") / "stgcn_j"
    result = CliRunner().invoke(main, ["train", "--store", str(ntu_train_store), "-o", str(out), *TRAIN_ARGS])
    assert result.exit_code == 0, result.output
    return out


class Payload:
    """Unpickling calls ``open(marker, "w")``: the file appears if a loader runs code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_checkpoint_with_a_pickle_payload_is_refused_everywhere(run, ntu_train_store, tmp_path):
    hostile, marker = tmp_path / "hostile", tmp_path / "marker"
    shutil.copytree(run, hostile)
    good = torch.load(run / "last.pt", weights_only=True)
    torch.save({"model": Payload(marker)}, hostile / "best.pt")
    torch.save(good | {"rng": Payload(marker)}, hostile / "last.pt")
    torch.save({"conv.weight": Payload(marker)}, tmp_path / "weights.pth")
    raw = sorted((ntu_train_store.parent / "raw").glob("*.skeleton"))[:1]
    attempts = {
        "test": ["test", hostile],
        "predict": ["predict", hostile, *raw],
        "predict last": ["predict", hostile, *raw, "--checkpoint", "last"],
        "resume": ["train", "--store", ntu_train_store, "-o", hostile, "--resume", *TRAIN_ARGS],
        "predict --weights": ["predict", "--arch", "stgcn", "--weights", tmp_path / "weights.pth", "--dataset",
                              "ntu60", *raw],
    }
    before = {p.name: p.stat().st_mtime_ns for p in hostile.iterdir()}
    for what, args in attempts.items():
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 1, (what, result.output)
        error = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "refused: it holds a pickled Python object" in error[0], (what, result.output)
        assert ".pt" in error[0] or ".pth" in error[0]
        assert not marker.exists(), what
    assert {p.name: p.stat().st_mtime_ns for p in hostile.iterdir()} == before  # nothing written either


def test_unreadable_and_foreign_checkpoints_get_one_line(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk.pt: not a readable torch checkpoint"):
        runtime.load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other.pt: not a skeltools checkpoint \(no 'model'\)"):
        runtime.load_checkpoint(tmp_path / "other.pt", keys=("model",))


def test_resume_state_is_plain_data(run):
    state = runtime.load_checkpoint(run / "last.pt", keys=("model", "optimizer", "rng", "recipe"))
    assert state["epoch"] == 1 and state["recipe"]["arch"] == "stgcn"
    assert state["rng"]["torch"].dtype == torch.uint8


# ---------------------------------------------------------------------------------------------------------------
# Denormals

def denormals_survive() -> bool:
    """Whether this thread's CPU keeps a denormal product (False under flush-to-zero)."""
    return bool((torch.tensor([1e-30]) * torch.tensor([1e-10])).item() != 0)


def _can_flush() -> bool:
    flushing = not denormals_survive()
    supported = torch.set_flush_denormal(True)
    torch.set_flush_denormal(flushing)
    return supported


needs_ftz = pytest.mark.skipif(not _can_flush(), reason="this CPU cannot flush denormals")


@pytest.fixture
def denormals_kept():
    """Start with denormals kept (as a fresh process does) and the flag unset; restore the state afterwards."""
    flushing, cached = not denormals_survive(), runtime._flushing
    torch.set_flush_denormal(False)
    runtime._flushing = None
    yield
    torch.set_flush_denormal(flushing)
    runtime._flushing = cached


@needs_ftz
def test_train_test_and_predict_flush_denormals(run, ntu_train_store, tmp_path, denormals_kept):
    from trainer.predict import load_predictor
    from trainer.testing import test_run

    entries = {
        "test": lambda: test_run(run, log=lambda _: None),
        "predict": lambda: load_predictor(run),
        "train": lambda: train(RunConfig(arch="stgcn", store=str(ntu_train_store), out_dir=str(tmp_path / "t"),
                                         workers=0), resolve_recipe("stgcn", overrides=FAST), log=lambda _: None),
    }
    for name, entry in entries.items():
        torch.set_flush_denormal(False)
        runtime._flushing = None
        assert denormals_survive()
        entry()
        assert not denormals_survive(), name


@needs_ftz
def test_cli_flushes_before_blas_threads_start(run):
    """MKL's threads keep the mode they started with: the CLI must flush before any torch work, so that a batched
    matmul on two threads (MS-G3D's graph convolution) also treats denormal inputs as zero."""
    code = textwrap.dedent(f"""
        import torch
        from skeltools.cli import main
        try:
            main(["test", {str(run)!r}])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        a = torch.full((4, 256, 256), 1e-39)
        print("max", torch.bmm(a, torch.ones(4, 256, 256)).abs().max().item())
    """)
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "max 0.0"


def denormal_census(model: torch.nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Denormal entries in the parameters, buffers and every module's inputs and output of one eval forward."""
    tiny = torch.finfo(torch.float32).tiny

    def count(t) -> int:
        return int(((t != 0) & (t.abs() < tiny)).sum()) if isinstance(t, torch.Tensor) and t.is_floating_point() \
            else 0

    found = {name: count(t) for name, t in [*model.named_parameters(), *model.named_buffers()]}

    def hook(name):
        return lambda module, inputs, output: found.update(
            {name: found.get(name, 0) + sum(map(count, inputs)) + count(output)})

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    with torch.no_grad():
        model.eval()(x)
    for h in handles:
        h.remove()
    return {k: v for k, v in found.items() if v}


@pytest.mark.parametrize("arch", ["dgstgcn", "dualhead", "msg3d", "stgcn", "stgcnpp"])
def test_trained_models_compute_no_denormals_in_eval_mode(arch, denormals_kept):
    """The source side: after a few SGD steps on clips where half the samples have no second person (zeros, as in
    NTU), no parameter, BatchNorm statistic or activation of an eval forward is denormal."""
    from trainer.models import build_model

    torch.manual_seed(0)
    kw = {"num_gcn_scales": 4, "num_g3d_scales": 2} if arch in ("dualhead", "msg3d") else {}
    model = build_model(arch, num_classes=5, **kw)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(4, 2, 16, 25, 3, generator=g)
        x[::2, 1] = 0
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model.train()(x), torch.arange(4) % 5).backward()
        optimizer.step()
    assert denormal_census(model, x) == {}
    name, last = list(model.named_parameters())[-1]
    last.data.view(-1)[0] = 1e-39  # the census sees a planted denormal
    assert denormal_census(model, x)[name] == 1
