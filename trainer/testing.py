"""Testing a trained run: predictions with multi-clip averaging, metrics, confusion matrix and score files.

``test_run(RUN_DIR)`` writes, next to the run:
  scores.parquet       the test part: sample_id, label, logits, probs + metadata (architecture, modality, clips, ...)
  val_scores.parquet   the validation part the run chose its best epoch on (for ensemble weight search)
  test.json            top-1, top-5, mean per-class accuracy, the worst-confused class pairs
  confusion.png        the row-normalised confusion matrix (with matplotlib)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.evaluate import aggregate_clips, compute_metrics, plot_confusion, worst_confusions, write_scores
from trainer.recipes import Recipe
from trainer.runtime import flush_denormals, load_checkpoint


def load_run(run_dir, device: torch.device, checkpoint: str = "best.pt"):
    """(run.json contents, recipe, model in eval mode with the checkpoint's weights)."""
    from schemas.layouts import layout_from_attrs
    from trainer.models import build_model

    flush_denormals()
    run_dir = Path(run_dir)
    for name in ("run.json", "recipe.json", checkpoint):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir}: no {name}; is this a finished `skeltools train` run directory?")
    run = json.loads((run_dir / "run.json").read_text())
    recipe = Recipe.load(run_dir / "recipe.json")
    model = build_model(run["arch"], num_classes=run["num_classes"], layout=layout_from_attrs(run),
                        in_channels=run["in_channels"], num_persons=run["num_persons"], **run["model_kwargs"])
    model.load_state_dict(load_checkpoint(run_dir / checkpoint, device, keys=("model",))["model"])
    return run, recipe, model.to(device).eval()


def clips_per_sample(recipe: Recipe, clips: int | None = None, log=print) -> int:
    """Clips per sample at test time: ``clips`` or the recipe's; 1 when the recipe feeds whole sequences."""
    clips = clips or recipe.test_clips
    if recipe.sampling != "uniform" and clips != 1:
        log(f"note: the {recipe.arch} recipe's {recipe.sampling} sampling gives one clip; testing with 1, not {clips}")
        clips = 1
    return clips


def eval_dataset(store, rows, modality: str, recipe: Recipe, clips: int, persons: int | None = None):
    """The test-time clips of ``rows`` of ``store``: the recipe's sampling, seeded per sample (its row);
    ``persons``: M of the model (default: the store's)."""
    from trainer.data import SkeletonDataset

    return SkeletonDataset(store, rows=rows, num_clips=clips, modality=modality, clip_len=recipe.clip_len,
                           seed=recipe.seed, sampling=recipe.sampling, pad=recipe.pad_mode, train=False,
                           persons=persons)


@torch.no_grad()
def predict(model, dataset, *, device: torch.device, batch_size: int = 16, clip_fusion: str = "prob",
            workers: int = 0, progress: bool = True, desc: str = "predict") -> tuple[np.ndarray, np.ndarray]:
    """(logits, probs), each (N, K) float32, of every sample of ``dataset``; several clips per sample are
    combined by ``clip_fusion`` (mean of softmax, or of logits). ``progress``: a bar over the batches on a
    terminal."""
    from tqdm import tqdm

    from trainer.data import make_loader

    loader = make_loader(dataset, batch_size, shuffle=False, num_workers=workers)
    outputs = []
    for clips, _ in tqdm(loader, desc=desc, unit="batch", leave=False, disable=None if progress else True):
        if clips.ndim == 5:  # one clip per sample: (N, M, T, V, C)
            clips = clips.unsqueeze(1)
        n, c = clips.shape[:2]
        logits = model(clips.flatten(0, 1).to(device)).float().cpu().numpy()
        outputs.append(logits.reshape(n, c, -1))
    return aggregate_clips(np.concatenate(outputs), clip_fusion)


def test_run(run_dir, *, store: str | None = None, clips: int | None = None, device: str = "auto",
             batch_size: int = 16, workers: int = 0, progress: bool = True, log=print) -> dict[str, Any]:
    """Evaluate a run's best checkpoint on its protocol's test part (and validation part); write the results."""
    from skeltools.store import SkeletonStore
    from trainer.train import VAL_FRACTION, holdout, pick_device

    run_dir = Path(run_dir)
    dev = pick_device(device)
    run, recipe, model = load_run(run_dir, dev)
    store_path = store or run["store"]
    st = SkeletonStore.open(store_path)
    if st.class_names != run["class_names"]:
        raise ValueError(f"{store_path}: its classes differ from those {run_dir} was trained on")
    clips = clips_per_sample(recipe, clips, log)
    protocol = run["protocol"]
    train_rows = st.rows(f"{protocol}_train")
    val_rows = (st.rows(f"{protocol}_val") if f"{protocol}_val" in st.split_columns
                else holdout(train_rows, recipe.seed, run.get("val_fraction", VAL_FRACTION))[1])
    meta = {"architecture": run["arch"], "modality": run["modality"], "protocol": protocol, "clips": clips,
            "clip_fusion": recipe.clip_fusion, "sampling": recipe.sampling, "clip_len": recipe.clip_len,
            "recipe": recipe.to_dict(), "class_names": run["class_names"], "store": str(Path(store_path).resolve()),
            "run": str(run_dir.resolve())}
    results = {}
    for part, rows, n_clips, name in (("test", st.rows(f"{protocol}_test"), clips, "scores.parquet"),
                                      ("val", val_rows, 1, "val_scores.parquet")):
        dataset = eval_dataset(st, rows, run["modality"], recipe, n_clips)
        logits, probs = predict(model, dataset, device=dev, batch_size=batch_size, clip_fusion=recipe.clip_fusion,
                                workers=workers, progress=progress, desc=f"{part} ({n_clips} clip(s) per sample)")
        write_scores(run_dir / name, dataset.sample_ids, dataset.labels, logits, probs=probs,
                     metadata=meta | {"part": part, "clips": n_clips})
        results[part] = compute_metrics(probs if recipe.clip_fusion == "prob" else logits, dataset.labels)
    test = results["test"]
    report = {**test.summary(), "num_samples": test.num_samples, "clips": clips, "val_top1": results["val"].top1,
              "worst_confusions": worst_confusions(test.confusion, run["class_names"], n=10)}
    (run_dir / "test.json").write_text(json.dumps(report, indent=1) + "\n")
    if not plot_confusion(test.confusion, run["class_names"], run_dir / "confusion.png"):
        log("note: matplotlib is not installed (pip install 'skeltools[viz]'); confusion.png skipped")
    return report
