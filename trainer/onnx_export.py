"""ONNX export of a trained run: ``skeltools export-model RUN_DIR --onnx model.onnx``.

The graph takes ``clips`` float32 ``(N, M, T, V, C)`` (the model batch order) and returns ``logits`` and
``probs`` (softmax), both ``(N, K)``. N is always dynamic; T is fixed (``frames``, default the recipe's clip
length) or dynamic. Multi-clip fusion and the preprocessing stay outside the graph; the metadata says what they are.

Exporter: torch's ``torch.export``-based exporter (``dynamo=True``, needs ``onnxscript``). The TorchScript-based
exporter of torch 2.13 cannot export ``nn.Unfold`` with a symbolic input size (MS-G3D, DualHead-Net) and bakes
the batch size into a reshape of DG-STGCN, so it is not used. The model's metadata_props hold the class names
(JSON), the architecture, modality, layout, coords, persons, recipe clip sampling and the training preprocessing.
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

MIN_OPSET = 18  # the torch.export-based exporter writes opset 18 and newer
MIN_FRAMES = 4  # two temporal stride-2 stages must leave at least one frame


class Scores(nn.Module):
    """``clips -> (logits, softmax(logits))``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(clips)
        return logits, torch.softmax(logits, dim=1)


def metadata(predictor, frames: int | None) -> dict[str, str]:
    """The metadata_props of an exported predictor (every value a string; structured ones as JSON)."""
    from skeltools import __version__

    r, a = predictor.recipe, predictor.attrs
    custom = {"layout_definition": json.dumps(a["layout_definition"])} if "layout_definition" in a else {}
    return custom | {
        "class_names": json.dumps(predictor.class_names),
        "architecture": predictor.arch,
        "modality": predictor.modality,
        "input": "clips float32 (N, M, T, V, C): batch, persons, frames, joints, channels",
        "frames": "dynamic" if frames is None else str(frames),
        "layout": a["layout"],
        "coords": a["coords"],
        "persons": str(a["persons"]),
        "dataset": a["dataset"],
        "source": a["source"],
        "preset": a.get("preset", ""),
        "preprocessing": json.dumps(a.get("preprocessing", {})),
        "sampling": r.sampling,
        "clip_len": str(r.clip_len),
        "test_clips": str(r.test_clips),
        "clip_fusion": r.clip_fusion,
        "pad_mode": r.pad_mode,
        "skeltools_version": __version__,
    }


def export_graph(model: nn.Module, sample_shape: tuple[int, int, int, int], *, dynamic_frames: bool = False,
                 opset: int = MIN_OPSET):
    """``Scores(model)`` as a ``torch.onnx.ONNXProgram`` for clips of ``sample_shape`` (M, T, V, C), with a
    dynamic batch (and T with ``dynamic_frames``)."""
    example = torch.zeros(2, *sample_shape)  # N = 2: torch.export specialises sizes 0 and 1
    dims = {0: torch.export.Dim("batch", max=4096)}
    if dynamic_frames:
        dims[2] = torch.export.Dim("frames", min=MIN_FRAMES, max=100_000)
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping torchvision::nms" and the like
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.onnx.export(Scores(model).eval(), (example,), input_names=["clips"],
                                     output_names=["logits", "probs"], dynamic_shapes=(dims,),
                                     opset_version=opset, dynamo=True, verbose=False)
    finally:
        registry_log.setLevel(level)


def export_onnx(predictor, output, *, frames: int | None = None, dynamic: bool = False,
                opset: int = MIN_OPSET, overwrite: bool = False) -> dict[str, Any]:
    """Write ``predictor``'s model to ``output`` as ONNX; return a summary (inputs, outputs, opset, metadata).
    An existing ``output`` is replaced only with ``overwrite`` (else ``FileExistsError``).

    ``dynamic``: any number of frames; else ``frames`` (default: the recipe's clip length) are fixed. Raises
    ``RuntimeError`` naming the architecture and the exporter's reason when the model cannot be exported.
    """
    if Path(output).exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
    try:
        import onnxscript  # noqa: F401 - the exporter needs it
    except ImportError:
        raise RuntimeError("ONNX export needs onnxscript: pip install 'skeltools[onnx]'") from None
    if opset < MIN_OPSET:
        raise ValueError(f"--opset {opset}: the exporter writes opset {MIN_OPSET} or newer")
    if dynamic and frames is not None:
        raise ValueError("--frames fixes the clip length; --dynamic leaves it free: give one of them")
    t = predictor.recipe.clip_len if frames is None else frames
    if t < MIN_FRAMES:
        raise ValueError(f"--frames {t}: at least {MIN_FRAMES} frames")
    a = predictor.attrs
    from schemas.layouts import layout_from_attrs
    from skeltools.modalities import pair_rule, parse_features

    channels = pair_rule(a).channels * len(parse_features(predictor.modality))
    shape = (a["persons"], t, layout_from_attrs(a).num_joints, channels)
    try:
        program = export_graph(predictor.model.float().cpu(), shape, dynamic_frames=dynamic, opset=opset)
    except Exception as exc:  # noqa: BLE001 - report the exporter's reason in one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuntimeError(f"{predictor.arch} cannot be exported to ONNX with torch {torch.__version__}"
                           f"{' with a dynamic length' if dynamic else ''}: {reason}") from None
    meta = metadata(predictor, None if dynamic else t)
    program.model.metadata_props.update(meta)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    program.save(str(partial))
    partial.replace(output)
    return {"output": str(output), "frames": meta["frames"], "opset": program.model.opset_imports.get("", opset),
            "classes": len(predictor.class_names), "bytes": output.stat().st_size, "metadata": meta}
