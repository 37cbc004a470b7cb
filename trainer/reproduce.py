"""One command per protocol: train every stream of a paper's cell with its recipe, test, fuse as the paper does, and
set each number beside the paper's.

``reproduce(cell, store, out)`` lays out ``out/`` as:

  {stream}/                one run directory per stream (modality), `skeltools train` + `skeltools test` outputs
  pretrain/{stream}/       the pre-training runs of a cell pre-trained on another dataset (e.g. NTU120 X-Set)
  logs/{stream}.log        a stream's output when streams run as parallel subprocesses
  results.json, results.md every stream's and fusion's top-1 / top-5 / mean per-class accuracy, the paper's
                           number and the difference

Resumable: a stream whose ``test.json`` exists is not retrained, a stream killed mid-training resumes from its
``last.pt``; a run directory trained with another recipe is refused, never silently reused. With ``devices``
(CUDA indices, or ``cpu``) the streams run in parallel as subprocesses, one per device at a time; otherwise one
after another in this process. Overrides (``--epochs``, ``--set``) apply to every stream (and pre-training run);
``results`` lists every field that deviates from the cell's recipe and marks each difference to the paper as not
comparable then.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from trainer.recipes import CELLS, METRICS, Cell, Recipe, Reported, format_reported

_IGNORED = ("source", "notes")  # recipe fields that describe rather than decide


@dataclass(frozen=True)
class Stage:
    """One training run (and its test, for a stream of the cell)."""

    name: str  # "j", or "pretrain-j"
    arch: str
    store: str
    protocol: str
    modality: str
    run_dir: str
    recipe: dict[str, Any]
    model_kwargs: dict[str, Any]
    init_from: str | None = None
    test: bool = True

    def finished(self) -> bool:
        run = Path(self.run_dir)
        if self.test:
            return (run / "test.json").exists()
        return (run / "run.json").exists() and "best_epoch" in json.loads((run / "run.json").read_text())


def check_store(cell: Cell, store) -> None:
    """The store must hold the cell's dataset (its classes and split columns) in the cell's layout."""
    from skeltools.store import SkeletonStore

    attrs = SkeletonStore.open(store).attrs
    if attrs.get("dataset") != cell.dataset or attrs.get("layout") != cell.layout:
        raise ValueError(f"{store}: a {attrs.get('dataset')} store in layout {attrs.get('layout')}; {cell.name} "
                         f"needs dataset {cell.dataset} in layout {cell.layout}")


def _plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def deviations(cell: Cell, recipe: Recipe, mode: str) -> dict[str, list]:
    """Recipe fields where ``recipe`` differs from the cell's ``mode`` recipe: field -> [used, the recipe's]."""
    reference = cell.recipe(mode).to_dict()
    return {k: [_plain(v), _plain(reference[k])] for k, v in recipe.to_dict().items()
            if k not in _IGNORED and _plain(v) != _plain(reference[k])}


def plan(cell: Cell, store, out, *, mode: str = "repo", overrides: dict[str, Any] | None = None,
         pretrain_store=None, pretrained: dict[str, str] | None = None) -> list[list[Stage]]:
    """The jobs of a cell: per stream, its pre-training run (when the cell pre-trains and ``pretrained`` does not
    name a run or checkpoint for that stream) then its training and test, in that order."""
    out, pretrained = Path(out), dict(pretrained or {})
    check_store(cell, store)
    unknown = set(pretrained) - set(cell.streams)
    if unknown or (pretrained and not cell.pretrain):
        raise ValueError(f"--pretrained names {', '.join(sorted(pretrained))}; {cell.name} "
                         + (f"pre-trains streams {', '.join(cell.streams)}" if cell.pretrain else "pre-trains nothing"))
    recipe = cell.recipe(mode, overrides).to_dict()
    jobs = []
    for stream in cell.streams:
        job, init = [], None
        if cell.pretrain:
            init = pretrained.get(stream)
            if init is None:
                pre = CELLS[cell.pretrain]
                if pretrain_store is None:
                    raise ValueError(f"{cell.name} pre-trains each stream on {pre.target}: give --pretrain-store "
                                     f"(a {pre.dataset} store) or --pretrained {stream}=RUN_DIR|CHECKPOINT")
                check_store(pre, pretrain_store)
                init = str(out / "pretrain" / stream)
                job.append(Stage(f"pretrain-{stream}", pre.arch, str(pretrain_store), pre.split, stream, init,
                                 pre.recipe(mode, overrides).to_dict(), pre.model_kwargs(), test=False))
        job.append(Stage(stream, cell.arch, str(store), cell.split, stream, str(out / stream), recipe,
                         cell.model_kwargs(), init_from=init))
        jobs.append(job)
    return jobs


def run_stage(stage: Stage, *, device: str = "auto", workers: int = 2, log: Callable[[str], None] = print) -> None:
    """Train (resuming what a killed run left) and test one stage; a finished stage is left as it is."""
    from trainer.testing import test_run
    from trainer.train import RunConfig, train

    run_dir, recipe = Path(stage.run_dir), Recipe.from_dict(stage.recipe)
    if (run_dir / "recipe.json").exists() and Recipe.load(run_dir / "recipe.json") != recipe:
        raise ValueError(f"{run_dir} was trained with another recipe; rerun with the same options, or use another "
                         "output folder")
    if stage.finished():
        log(f"[{stage.name}] finished earlier: {run_dir}")
        return
    cfg = RunConfig(arch=stage.arch, store=stage.store, out_dir=str(run_dir), protocol=stage.protocol,
                    modality=stage.modality, device=device, workers=workers, resume=True,
                    model_kwargs=stage.model_kwargs, init_from=stage.init_from)
    train(cfg, recipe, log=lambda m: log(f"[{stage.name}] {m}"))
    if stage.test:
        r = test_run(run_dir, device=device, workers=workers, log=lambda m: log(f"[{stage.name}] {m}"))
        log(f"[{stage.name}] test top-1 {r['top1']:.2%}, mean-class {r['mean_class']:.2%}")


def run_jobs(jobs: list[list[Stage]], out, *, device: str = "auto", devices: list[str] | None = None,
             workers: int = 2, log: Callable[[str], None] = print) -> None:
    """Every job's stages in order: here, one job after another, or with ``devices`` one subprocess per job and
    device at a time (``logs/{stream}.log``). Raises after all jobs ran if any failed."""
    if not devices:
        for job in jobs:
            for stage in job:
                run_stage(stage, device=device, workers=workers, log=log)
        return
    logs = Path(out) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    free: queue.Queue[str] = queue.Queue()
    for d in devices:
        free.put(d)

    def launch(job: list[Stage]) -> str | None:
        token = free.get()
        try:
            env = dict(os.environ)
            if token != "cpu":
                env["CUDA_VISIBLE_DEVICES"] = token
            spec = logs / f"{job[-1].name}.json"
            spec.write_text(json.dumps([asdict(s) for s in job]))
            where = "cpu" if token == "cpu" else f"GPU {token}"
            log(f"[{job[-1].name}] running on {where}; log: {spec.with_suffix('.log')}")
            with open(spec.with_suffix(".log"), "a") as fh:
                done = subprocess.run([sys.executable, "-m", "trainer.reproduce", str(spec),
                                       "cpu" if token == "cpu" else "cuda", str(workers)], stdout=fh,
                                      stderr=subprocess.STDOUT, env=env)
            if done.returncode:
                return f"{job[-1].name} (exit {done.returncode}, see {spec.with_suffix('.log')})"
            return None
        finally:
            free.put(token)

    with ThreadPoolExecutor(len(devices)) as pool:
        failed = [f for f in pool.map(launch, jobs) if f]
    if failed:
        raise RuntimeError("streams failed: " + "; ".join(failed))


# ---------------------------------------------------------------------------------------------------------------
# Results


def _percent(metrics) -> dict[str, float]:
    return {m: round(100 * float(getattr(metrics, m) if not isinstance(metrics, dict) else metrics[m]), 2)
            for m in METRICS}


def _row(name: str, kind: str, ours: dict[str, float], reported: Reported | None, comparable: bool) -> dict:
    paper = {k: v for k, v in (reported.values if reported else ()) if v is not None}
    return {"name": name, "kind": kind, **ours, "paper": paper, "paper_entry": reported.name if reported else None,
            "difference": {k: round(ours[k] - v, 2) for k, v in paper.items()}, "comparable": comparable}


def collect(cell: Cell, jobs: list[list[Stage]], mode: str, out) -> dict[str, Any]:
    """results.json's contents: per stream its test metrics, per fusion the paper reports (or, when it reports
    none, all streams at equal weights) the fused metrics; each beside the paper's number."""
    from trainer.ensemble import ensemble
    from trainer.evaluate import read_scores

    streams = {job[-1].name: job[-1] for job in jobs}
    recipe = Recipe.from_dict(streams[cell.streams[0]].recipe)
    deviating = deviations(cell, recipe, mode)
    pre = [job[0] for job in jobs if len(job) > 1]
    if pre:  # every pre-training run has the same recipe
        deviating |= {f"pretrain {k}": v for k, v in
                      deviations(CELLS[cell.pretrain], Recipe.from_dict(pre[0].recipe), mode).items()}
    comparable = not deviating
    by_streams = {r.streams: r for r in cell.reported}
    rows = []
    for name, stage in streams.items():
        test = json.loads((Path(stage.run_dir) / "test.json").read_text())
        rows.append(_row(name, "stream", _percent(test), by_streams.get((name,)), comparable))
    fusions = [r for r in cell.reported if r.fused] or ([Reported("all", cell.streams, (1.0,) * len(cell.streams),
                                                                   (), "")] if len(cell.streams) > 1 else [])
    scores = {name: read_scores(Path(s.run_dir) / "scores.parquet") for name, s in streams.items()}
    for r in fusions:
        result = ensemble([scores[s] for s in r.streams], list(r.weights), on=cell.fuse_on, names=list(r.streams))
        weights = ":".join(f"{w:g}" for w in r.weights)
        rows.append(_row(f"{r.name} ({'+'.join(r.streams)} {weights} on {cell.fuse_on})", "fusion",
                         _percent(result.fused), r if r.values else None, comparable))
    test_samples = json.loads((Path(streams[cell.streams[0]].run_dir) / "test.json").read_text())["num_samples"]
    return {"cell": cell.name, "recipe_mode": mode, "recipe_source": recipe.source, "cell_source": cell.source,
            "metric": cell.metric, "test_samples": test_samples, "deviations": deviating, "comparable": comparable,
            "pretrain": cell.pretrain, "init_from": {n: s.init_from for n, s in streams.items() if s.init_from},
            "rows": rows, "paper_numbers": [format_reported(r) for r in cell.reported],
            "notes": list(cell.notes)}


def results_markdown(results: dict[str, Any]) -> str:
    """results.md: a header, the deviation warning when there is one, and the table."""
    lines = [f"# {results['cell']}", "",
             f"Recipe ({results['recipe_mode']}): {results['recipe_source']}. Cell: {results['cell_source']}.",
             f"Reported metric: {results['metric']}. Test samples: {results['test_samples']}."]
    if results["pretrain"]:
        starts = ", ".join(f"{k} from {v}" for k, v in results["init_from"].items())
        lines.append(f"Each stream pre-trained as {results['pretrain']} first ({starts}).")
    if not results["comparable"]:
        changed = ", ".join(f"{k} {v[0]} (recipe {'-' if v[1] is None else v[1]})"
                            for k, v in results["deviations"].items())
        lines += ["", f"**This run deviates from the recipe: {changed}. Its numbers are not comparable with the "
                      "paper's; differences marked † are shown for orientation only.**"]
    lines += ["", "| | top-1 | top-5 | mean-class | paper | difference |", "|---|---|---|---|---|---|"]
    mark = "" if results["comparable"] else " †"
    for row in results["rows"]:
        paper = ", ".join(f"{v:g} {k}" for k, v in row["paper"].items()) or "-"
        diff = ", ".join(f"{v:+.2f} {k}{mark}" for k, v in row["difference"].items()) or "-"
        lines.append(f"| {row['name']} | {row['top1']:.2f} | {row['top5']:.2f} | {row['mean_class']:.2f} | {paper} "
                     f"| {diff} |")
    lines += [f"- {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"


def reproduce(cell: Cell, store, out, *, mode: str = "repo", overrides: dict[str, Any] | None = None,
              pretrain_store=None, pretrained: dict[str, str] | None = None, device: str = "auto",
              devices: list[str] | None = None, workers: int = 2, log: Callable[[str], None] = print) -> dict:
    """Plan, run what is missing, and write ``out/results.json`` and ``out/results.md``; returns the results."""
    out = Path(out)
    jobs = plan(cell, store, out, mode=mode, overrides=overrides, pretrain_store=pretrain_store,
                pretrained=pretrained)
    out.mkdir(parents=True, exist_ok=True)
    todo = [s.name for job in jobs for s in job if not s.finished()]
    log(f"{cell.name}: streams {', '.join(cell.streams)}; to run: {', '.join(todo) or 'nothing'}")
    run_jobs(jobs, out, device=device, devices=devices, workers=workers, log=log)
    results = collect(cell, jobs, mode, out)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(results_markdown(results))
    return results


if __name__ == "__main__":  # one job of a parallel reproduce: python -m trainer.reproduce JOB.json DEVICE WORKERS
    for item in json.loads(Path(sys.argv[1]).read_text()):
        run_stage(Stage(**item), device=sys.argv[2], workers=int(sys.argv[3]), log=lambda m: print(m, flush=True))
