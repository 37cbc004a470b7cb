"""The training loop: AMP on CUDA, DDP under torchrun, a checkpoint every epoch, exact resume, NaN guard.

A run directory holds ``run.json`` (what was trained on what), ``recipe.json`` (the resolved recipe),
``metrics.csv`` (one row per epoch, validation top-1 and mean per-class accuracy), ``last.pt`` (everything needed
to resume), ``best.pt`` (the weights of the epoch with the best validation ``recipe.best_metric``, top-1 or mean
per-class accuracy for long-tailed data, ties going to the lower validation loss) and ``curves.png`` when
matplotlib is installed.

Validation uses the protocol's ``{protocol}_val`` column when the store has one, else a seeded share of the train
part held out from training (``RunConfig.val_fraction``, 5 % by default; ``run.json`` says which). Randomness
derives from ``(seed, epoch, sample)``: the sample order of an epoch is a permutation seeded by ``(seed, epoch)``,
and the dataset's clip draws by ``(seed, epoch, sample)``, so neither the worker count nor a resume changes what the
model sees.
"""
from __future__ import annotations

import csv
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from schemas.layouts import layout_attrs
from schemas.store import SAMPLE_ATTRS
from trainer.finetune import initialise_from, param_groups
from trainer.recipes import Recipe
from trainer.runtime import flush_denormals, load_checkpoint

VAL_FRACTION = 0.05
#: What ``last.pt`` holds for ``--resume``: tensors and plain values only (it is read with weights_only=True).
RESUME_KEYS = ("model", "optimizer", "scheduler", "scaler", "rng", "epoch", "best", "history", "recipe")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class RunConfig:
    """What to train on what (the recipe says how)."""

    arch: str
    store: str
    out_dir: str
    protocol: str = "xsub"  # split columns {protocol}_train / _val / _test
    modality: str = "j"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (bf16 if supported, else fp16 on CUDA; off on CPU) | bf16 | fp16 | off
    compile: bool = False
    workers: int = 2
    resume: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    progress: bool = True  # a progress bar per epoch and validation pass (shown only on a terminal)
    val_fraction: float = VAL_FRACTION  # of the train part held out when the store has no {protocol}_val part
    init_from: str | None = None  # fine-tune: a run directory or checkpoint to start from (trainer.finetune)
    freeze_backbone: bool = False  # with init_from: loaded and mapped parameters take no gradient


# ---------------------------------------------------------------------------------------------------------------
# Pieces


def lr_factor(recipe: Recipe, iteration: int, iters_per_epoch: int) -> float:
    """Learning-rate multiplier at ``iteration`` (0-based, counted over the whole run)."""
    epoch = iteration / iters_per_epoch
    if recipe.warmup_epochs and epoch < recipe.warmup_epochs:
        return (iteration + 1) / (recipe.warmup_epochs * iters_per_epoch)
    if recipe.schedule == "cosine":
        total = recipe.epochs * iters_per_epoch
        return 0.5 * (1 + math.cos(math.pi * min(iteration, total) / total))
    return recipe.gamma ** sum(int(epoch) >= m for m in recipe.milestones)


def holdout(rows: np.ndarray, seed: int, fraction: float = VAL_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Split train rows into (train, validation): a seeded ``fraction`` (at least one sample) held out."""
    if not 0 < fraction < 1:
        raise ValueError(f"the validation fraction must be between 0 and 1, not {fraction}")
    rng = np.random.default_rng([seed, 0xBA1])
    n_val = max(1, int(round(len(rows) * fraction)))
    picked = np.zeros(len(rows), bool)
    picked[rng.choice(len(rows), n_val, replace=False)] = True
    return rows[~picked], rows[picked]


def fit_batch(recipe: Recipe, train_samples: int, world: int = 1) -> tuple[Recipe, str | None]:
    """The recipe for a training set of ``train_samples``: unchanged when it fills one batch, else with the batch cut
    to the largest multiple of ``world`` that fits (the learning rate follows the recipe's linear scaling unless it
    was given explicitly), and a one-line notice saying so."""
    if train_samples >= recipe.batch_size or train_samples < world:
        return recipe, None
    fitted = replace(recipe, batch_size=train_samples // world * world)
    lr = (f"learning rate {fitted.effective_lr:g} as given" if recipe.lr is not None else
          f"learning rate {recipe.effective_lr:g} -> {fitted.effective_lr:g}, scaled with the batch")
    return fitted, (f"note: {train_samples} training samples do not fill the recipe's batch of {recipe.batch_size}; "
                    f"training with batches of {fitted.batch_size} ({lr})")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32."""
    if device.type != "cuda" or mode == "off":
        if mode in ("bf16", "fp16") and device.type != "cuda":
            raise RuntimeError(f"--amp {mode} needs a CUDA device; CPU training runs in fp32")
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[mode]


class HeadsForward(nn.Module):
    """Wraps a two-head model so that ``forward(x, heads=True)`` returns both heads' logits (DDP-friendly)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, heads: bool = False):
        return self.model.forward_heads(x) if heads else self.model(x)


def compute_loss(model: nn.Module, clips: torch.Tensor, labels: torch.Tensor, criterion,
                 heads_mu: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, logits). A two-head model (``heads_mu`` set) trains on the mean of its heads' losses and predicts
    with ``mu·fine + (1 - mu)·coarse``, as DualHead-Net does."""
    if heads_mu is None:
        logits = model(clips)
        return criterion(logits, labels), logits
    fine, coarse = model(clips, heads=True)
    loss = (criterion(fine, labels) + criterion(coarse, labels)) / 2
    return loss, heads_mu * fine + (1 - heads_mu) * coarse


# ---------------------------------------------------------------------------------------------------------------
# Distributed


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> Dist:
    """Join the process group when launched by torchrun (gloo on CPU, NCCL on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local)


def sync_buffers(model: nn.Module, ctx: Dist) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics drift apart over an epoch under DDP)."""
    if ctx.world > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)


def all_sum(values: list[float], ctx: Dist, device: torch.device) -> list[float]:
    if ctx.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints and logs


def save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_metrics(history: list[dict[str, float]], out_dir: Path) -> bool:
    """``metrics.csv`` (one row per epoch) and, when matplotlib is installed, ``curves.png`` (then True)."""
    with open(out_dir / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    return plot_curves(history, out_dir / "curves.png")


def plot_curves(history: list[dict[str, float]], path: Path) -> bool:
    """Loss and accuracy per epoch; False (and nothing written) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.plot(epochs, [h["train_top1"] for h in history], label="train")
    ax_acc.plot(epochs, [h["val_top1"] for h in history], label="validation")
    ax_acc.set(xlabel="epoch", ylabel="top-1", title="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------------------------
# The loop


def build_datasets(cfg: RunConfig, recipe: Recipe, store) -> tuple[Any, Any, str]:
    """(train, validation, how validation was chosen) for the run's protocol."""
    from trainer.data import Augment, SkeletonDataset

    common = dict(modality=cfg.modality, clip_len=recipe.clip_len, seed=recipe.seed, sampling=recipe.sampling,
                  pad=recipe.pad_mode)
    train_rows = store.rows(f"{cfg.protocol}_train")
    if f"{cfg.protocol}_val" in store.split_columns:
        val_rows, val_source = store.rows(f"{cfg.protocol}_val"), f"{cfg.protocol}_val"
    else:
        train_rows, val_rows = holdout(train_rows, recipe.seed, cfg.val_fraction)
        val_source = f"a seeded {cfg.val_fraction:.0%} of {cfg.protocol}_train ({len(val_rows)} samples), held out"
    augment = Augment(rot_theta=recipe.rotation) if store.attrs["coords"] == "xyz" else Augment()
    train = SkeletonDataset(store, rows=train_rows, train=True, augment=augment, **common)
    val = SkeletonDataset(store, rows=val_rows, train=False, **common)
    return train, val, val_source


def _samplers(train_set, val_set, ctx: Dist, seed: int):
    """Per-rank samplers under DDP (None otherwise): training shuffled by (seed, epoch) and split across ranks;
    validation takes every world-th sample, so the ranks together cover it exactly once."""
    if ctx.world == 1:
        return None, None
    from torch.utils.data import DistributedSampler

    return (DistributedSampler(train_set, ctx.world, ctx.rank, shuffle=True, seed=seed),
            range(ctx.rank, len(val_set), ctx.world))


def run_epoch(model, loader, criterion, device, *, heads_mu, num_classes: int, optimizer=None, scheduler=None,
              scaler=None, autocast_dtype=None, ctx: Dist = Dist(), desc: str = "",
              progress: bool = True) -> dict[str, float]:
    """One pass over ``loader``: trains when ``optimizer`` is given, else evaluates. Sums are reduced over ranks.
    With ``progress``, rank 0 shows a bar (batches, ETA, running loss) on a terminal.

    Returns loss, top-1, mean per-class accuracy (over the classes present) and the sample count."""
    from tqdm import tqdm

    training = optimizer is not None
    model.train(training)
    loss_sum = correct = count = 0.0
    hits = torch.zeros(num_classes, dtype=torch.float64, device=device)
    seen = torch.zeros(num_classes, dtype=torch.float64, device=device)
    autocast = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext())
    with torch.set_grad_enabled(training):
        bar = tqdm(loader, desc=desc, leave=False, disable=None if ctx.main and progress else True, unit="batch")
        for clips, labels in bar:
            clips, labels = clips.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            with autocast:
                loss, logits = compute_loss(model, clips, labels, criterion, heads_mu)
            if training:
                if not torch.isfinite(loss.detach()):
                    raise TrainingDiverged(f"{desc}: the loss became {loss.item()} at iteration "
                                           f"{scheduler.last_epoch}; lower the learning rate (--lr) or check the data")
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                scheduler.step()
            loss_sum += loss.item() * len(labels)
            right = logits.argmax(1) == labels
            correct += right.sum().item()
            count += len(labels)
            hits += torch.bincount(labels[right], minlength=num_classes)[:num_classes]
            seen += torch.bincount(labels, minlength=num_classes)[:num_classes]
            bar.set_postfix(loss=f"{loss_sum / count:.4f}", refresh=False)
    loss_sum, correct, count, *per_class = all_sum([loss_sum, correct, count, *hits.tolist(), *seen.tolist()], ctx,
                                                   device)
    if count and not math.isfinite(loss_sum):
        raise TrainingDiverged(f"{desc}: the loss is not finite")
    hit, n = np.array(per_class[:num_classes]), np.array(per_class[num_classes:])
    mean_class = float((hit[n > 0] / n[n > 0]).mean()) if n.any() else 0.0
    return {"loss": loss_sum / max(count, 1), "top1": correct / max(count, 1), "mean_class": mean_class,
            "samples": int(count)}


def run_summary(run: dict[str, Any], recipe: Recipe, model: nn.Module, iters: int, val_samples: int) -> str:
    """The screen ``train`` starts with: data, model, device, batch and learning rate, recipe."""
    params = sum(p.numel() for p in model.parameters())
    lr = (f"{recipe.effective_lr:g} (given)" if recipe.lr is not None else
          f"{recipe.effective_lr:g} (base {recipe.base_lr:g} x batch {recipe.batch_size} / "
          f"{recipe.reference_batch_size})")
    schedule = recipe.schedule + (f" at epochs {','.join(map(str, recipe.milestones))}" if recipe.milestones else "")
    lines = [
        f"training {run['arch']} on {run['store']}",
        f"  data      {run['protocol']}, modality {run['modality']}, {run['num_classes']} classes; "
        f"{run['train_samples']} training and {val_samples} validation samples",
        f"  val       {run['validation']}",
        f"  model     {run['arch']}, {params:,} parameters, {run['in_channels']} input channels, "
        f"{run['num_persons']} person slots",
        f"  device    {run['device']} x {run['world_size']} process(es), {torch.get_num_threads()} thread(s) each, "
        f"AMP {run['amp']}",
        f"  batch     {recipe.batch_size} ({iters} iterations per epoch), learning rate {lr}, {schedule}, "
        f"{recipe.epochs} epochs",
        f"  clips     {recipe.sampling} sampling of {recipe.clip_len} frames, {recipe.test_clips} test clip(s)",
        f"  recipe    {recipe.source} (all fields in recipe.json)",
    ]
    return "\n".join(lines)


def train(cfg: RunConfig, recipe: Recipe, *, log=print) -> dict[str, Any]:
    """Train ``cfg.arch`` with ``recipe``; returns the run summary (also in ``run.json``)."""
    from skeltools.store import SkeletonStore
    from trainer.data import make_loader
    from trainer.losses import build_loss
    from trainer.models import build_model

    flush_denormals()
    ctx = init_distributed(cfg.device)
    try:
        device = pick_device(f"cuda:{ctx.local_rank}" if cfg.device in ("auto", "cuda") and torch.cuda.is_available()
                             and ctx.world > 1 else cfg.device)
        out = Path(cfg.out_dir)
        store = SkeletonStore.open(cfg.store)
        train_set, val_set, val_source = build_datasets(cfg, recipe, store)
        if train_set.plan.derived and ctx.main:
            log(f"note: {', '.join(train_set.plan.derived)} not in {store.path.name}: computed from the stored "
                f"arrays for every clip (`skeltools modalities {store.path}` stores it once)")
        recipe, notice = fit_batch(recipe, len(train_set), ctx.world)
        if notice and ctx.main:
            log(notice)
        num_classes = len(store.class_names)
        torch.manual_seed(recipe.seed)
        model = build_model(cfg.arch, num_classes=num_classes, layout=store.layout,
                            in_channels=train_set.channels, num_persons=train_set.persons, **cfg.model_kwargs)
        init_report = None
        if cfg.init_from:
            init_report = initialise_from(model, cfg.init_from, layout=store.layout, class_names=store.class_names,
                                          in_channels=train_set.channels, arch=cfg.arch,
                                          freeze_backbone=cfg.freeze_backbone,
                                          log=log if ctx.main else lambda m: None)
        heads_mu = getattr(model, "mu", None) if hasattr(model, "forward_heads") else None
        net: nn.Module = HeadsForward(model) if heads_mu is not None else model
        net.to(device)
        # Validation bypasses DDP: ranks may hold different numbers of validation batches, and DDP's forward is a
        # collective (a rank with one batch more would wait forever). Buffers are synced from rank 0 first.
        evaluator = net
        if ctx.world > 1:
            net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
        if cfg.compile:
            net = torch.compile(net)
            evaluator = net if ctx.world == 1 else torch.compile(evaluator)
        batch = recipe.batch_size // ctx.world
        if batch < 1 or recipe.batch_size % ctx.world:
            raise ValueError(f"batch size {recipe.batch_size} does not split over {ctx.world} processes")
        train_sampler, val_sampler = _samplers(train_set, val_set, ctx, recipe.seed)
        train_loader = make_loader(train_set, batch, shuffle=True, sampler=train_sampler, num_workers=cfg.workers)
        val_loader = make_loader(val_set, batch, shuffle=False, sampler=val_sampler, num_workers=cfg.workers)
        iters = len(train_loader)
        if iters == 0:
            raise ValueError(f"{len(train_set)} training samples cannot feed {ctx.world} processes")
        optimizer = torch.optim.SGD(param_groups(model, recipe.effective_lr, recipe.backbone_lr_mult),
                                    lr=recipe.effective_lr, momentum=recipe.momentum,
                                    weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(recipe, it, iters))
        dtype = amp_dtype(cfg.amp, device)
        scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
        class_counts = np.bincount(train_set.labels, minlength=num_classes)
        criterion = build_loss(recipe.loss, class_counts=class_counts, label_smoothing=recipe.label_smoothing) \
            if recipe.loss == "ce" else build_loss(recipe.loss, class_counts=class_counts)

        run = {"arch": cfg.arch, "store": str(Path(cfg.store).resolve()), "protocol": cfg.protocol,
               "modality": cfg.modality, **layout_attrs(store.layout), "dataset": store.attrs["dataset"],
               "preset": store.attrs.get("preset"), "class_names": store.class_names, "num_classes": num_classes,
               "in_channels": train_set.channels, "num_persons": train_set.persons,
               "store_attrs": {k: store.attrs[k] for k in SAMPLE_ATTRS if k in store.attrs},
               "model_kwargs": cfg.model_kwargs, "validation": val_source, "val_fraction": cfg.val_fraction,
               "train_samples": len(train_set),
               "world_size": ctx.world, "device": str(device), "amp": str(dtype).replace("torch.", "") if dtype else "off"}
        if init_report is not None:
            run["init_from"] = init_report.to_dict()
        start_epoch, best, history = 0, (-1.0, -math.inf), []
        last = out / "last.pt"
        if cfg.resume and last.exists():
            state = load_checkpoint(last, device, keys=RESUME_KEYS)
            if state["recipe"] != recipe.to_dict():
                raise ValueError(f"{last} was written with another recipe; resume with the same options")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            _set_rng_state(state["rng"])
            start_epoch, best, history = state["epoch"], tuple(state["best"]), state["history"]
            log(f"resuming {out} at epoch {start_epoch + 1}/{recipe.epochs}")
        elif ctx.main:
            out.mkdir(parents=True, exist_ok=True)
            if last.exists():
                raise FileExistsError(f"{out} already holds a run; use --resume to continue it or another -o")
            recipe.save(out / "recipe.json")
            (out / "run.json").write_text(json.dumps(run, indent=1) + "\n")
        if ctx.main:
            log(run_summary(run, recipe, model, iters, len(val_set)))

        for epoch in range(start_epoch, recipe.epochs):
            t0 = time.perf_counter()
            train_set.set_epoch(epoch)
            if train_sampler is not None:
                train_sampler.set_epoch(epoch)
            tr = run_epoch(net, train_loader, criterion, device, heads_mu=heads_mu, num_classes=num_classes,
                           optimizer=optimizer,
                           scheduler=scheduler, scaler=scaler, autocast_dtype=dtype, ctx=ctx,
                           desc=f"epoch {epoch + 1}/{recipe.epochs}", progress=cfg.progress)
            sync_buffers(model, ctx)
            va = run_epoch(evaluator, val_loader, criterion, device, heads_mu=heads_mu, num_classes=num_classes,
                           autocast_dtype=dtype, ctx=ctx, desc="validation", progress=cfg.progress)
            history.append({"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "train_loss": tr["loss"],
                            "train_top1": tr["top1"], "val_loss": va["loss"], "val_top1": va["top1"],
                            "val_mean_class": va["mean_class"], "seconds": round(time.perf_counter() - t0, 2)})
            score = (va[recipe.best_metric], -va["loss"])  # ties in the metric go to the lower loss
            improved = score > best
            best = max(best, score)
            if ctx.main:
                if improved:
                    save_atomic({"model": model.state_dict(), "epoch": epoch + 1, "val_top1": va["top1"],
                                 "val_mean_class": va["mean_class"]},
                                out / "best.pt")
                save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                             "rng": _rng_state(), "epoch": epoch + 1, "best": best, "history": history,
                             "recipe": recipe.to_dict()}, last)
                if not write_metrics(history, out) and epoch == start_epoch:
                    log("note: matplotlib is not installed (pip install 'skeltools[viz]'); curves.png is skipped")
                h = history[-1]
                log(f"epoch {epoch + 1}/{recipe.epochs}  loss {h['train_loss']:.4f}  train {h['train_top1']:.3f}  "
                    f"val {h['val_top1']:.3f}  mean-class {h['val_mean_class']:.3f}  ({h['seconds']:.1f} s)")
        chosen = max(history, key=lambda h: (h[f"val_{recipe.best_metric}"], -h["val_loss"]), default={})
        summary = run | {"epochs": recipe.epochs, "best_metric": recipe.best_metric, "best_epoch": chosen.get("epoch"),
                         "best_val_top1": chosen.get("val_top1", -1.0),
                         "best_val_mean_class": chosen.get("val_mean_class", -1.0),
                         "final": history[-1] if history else None}
        if ctx.main:
            (out / "run.json").write_text(json.dumps(summary, indent=1) + "\n")
        return summary
    finally:
        if ctx.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
