"""NTU RGB+D preprocessing presets: body selection + normalization, named after the reference they reproduce.

``preprocess(skel, preset)`` is the single entry point; it returns ``(T, M, 25, 3)`` float32 joints.

``clean`` (default)  our own denoising (``skeltools.denoise``): bodies tracked over time across bodyID changes,
                     persons told from noise by bone lengths, duration and motion (not by one frame's extent),
                     up to 2 persons at the file's frame numbers, main person first; then pyskl's
                     ``PreNormalize3D``. Fixes the references' lost actors, kept noise, shifted frames and
                     skipped files; the only preset that is not a reproduction.
``pyskl``            pyskl ``tools/data/ntu_preproc.py`` selection, then ``PreNormalize3D`` centring (main
                     person first, frames without it dropped, fixed first-frame origin); spine/shoulder rotation
                     only with ``align_spine=True``. Float32 throughout (pyskl stores float16). Variable length.
``ctrgcn``           CTR-GCN denoising (``get_raw_denoised_data.py``) + ``seq_translation``; a one-actor sample
                     gets a zero second actor on NTU60 and a copy of the actor on NTU120 (``align_frames``).
                     Variable length (no padding to the batch maximum).
``msg3d``            2s-AGCN / MS-G3D ``read_xyz`` slot selection + ``pre_normalization``: loop-padded to 300
                     frames (longer samples keep all their frames), per-frame centring, spine -> +z and
                     shoulders -> +x.
``none``             the first ``max_persons`` bodies of every frame by slot, raw camera coordinates, every header
                     frame kept, zeros where absent.

Where a reference crashes, the preset does not (every other behaviour, quirks included, is the reference's):

- nothing to keep raises :class:`EmptySkeletonError` with the reason: a 0-frame file or one whose every frame is
  empty (CTR-GCN asserts, pyskl returns ``None`` and later fails on it); several bodies all seen in <= 11
  frames (pyskl asserts, CTR-GCN hits an IndexError); spread denoising removing every body (pyskl asserts);
  selected bodies that are zero in every frame (pyskl's ``non_zero`` and CTR-GCN's ``seq_translation`` index
  past the end);
- ``ctrgcn``: a bodyID listed twice in one frame packs one row past the last frame (a broadcast error in
  CTR-GCN); the rows past the end are dropped, with a note;
- ``msg3d``: a sample longer than 300 frames (a broadcast error in MS-G3D) keeps every frame, unpadded, with a
  note, so that sample is longer than 300.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skeltools import denoise as dn
from skeltools import normalize as nz
from skeltools import select as sel

PRESETS = ("clean", "pyskl", "ctrgcn", "msg3d", "none")
#: The preset used when none is named (``pyskl`` is one flag away and reproduces the reference).
DEFAULT_PRESET = "clean"
DATASETS = ("ntu60", "ntu120")


class EmptySkeletonError(ValueError):
    """The sample has nothing to keep: 0 frames, every frame empty, or every body removed by denoising."""


@dataclass(frozen=True)
class PresetResult:
    """data       float32 (T, M, 25, 3): frames, persons (zero-filled when absent), joints, xyz
    n_persons  how many real persons were kept (persons with any non-zero value; a CTR-GCN NTU120 copy of
               the actor is not counted), 0..M
    notes      human-readable remarks on what the preset did to this sample
    """

    data: np.ndarray
    n_persons: int
    notes: tuple[str, ...]


_DESCRIPTIONS = {
    "clean": {
        "reference": "skeltools (denoising of its own), then pyskl PreNormalize3D",
        "selection": "bodyID tracklets linked over time where the pose continues (ID switches, flickers, "
                     "dropouts); persons = human shape (bone lengths, torso angles), > 11 frames, not still; a "
                     "second tracking of a person merged into it; up to 2 persons at the file's frame numbers "
                     "(gaps zero), more frames then more motion first; the longest body when none qualifies",
        "normalization": "main person (more frames) first; frames without it dropped; origin = its joint 1 in "
                         "the first kept frame, subtracted from non-zero joints",
        "frames": "variable length",
    },
    "pyskl": {
        "reference": "pyskl tools/data/ntu_preproc.py + PreNormalize3D",
        "selection": "bodyID tracks; drop <= 11-frame bodies; spread denoising on every body; stable sort by "
                     "motion; interval merge into 2 persons (exclusive ends); leading/trailing empty frames "
                     "trimmed; persons swapped when person 0 is absent from frame 0",
        "normalization": "main person (more frames) first; frames without it dropped; origin = its joint 1 in "
                         "the first kept frame, subtracted from non-zero joints",
        "frames": "variable length",
    },
    "ctrgcn": {
        "reference": "CTR-GCN get_raw_denoised_data.py + seq_transformation.py (seq_translation, align_frames)",
        "selection": "bodyID tracks; drop <= 11-frame bodies; spread denoising until one body is left; stable "
                     "sort by motion; interval merge into 2 actors (inclusive ends); frames without any actor "
                     "removed",
        "normalization": "origin = actor 1's joint 1 in its first non-zero frame, subtracted everywhere; frames "
                         "missing for an actor re-zeroed",
        "frames": "variable length (no padding)",
    },
    "msg3d": {
        "reference": "2s-AGCN / MS-G3D data_gen/ntu_gendata.py read_xyz + preprocess.py pre_normalization",
        "selection": "first 4 bodies of each frame by slot; top 2 by energy (sum of per-axis std over non-zero "
                     "frames)",
        "normalization": "null-frame padding (compaction when frame 0 is empty, loop padding of the tail); "
                         "per-frame centring on person 0's joint 1; spine (0->1) to +z; shoulders (4->8) to +x",
        "frames": "300 (longer samples keep every frame)",
    },
    "none": {
        "reference": "st-gcn style raw slots",
        "selection": "first bodies of each frame by slot position",
        "normalization": "none (raw camera coordinates)",
        "frames": "every header frame, empty frames are zeros",
    },
}


def describe_preset(preset: str, *, dataset: str = "ntu60", align_spine: bool = False) -> dict:
    """A JSON-serialisable description of what ``preset`` does (stored in a store's attributes)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    info = {"preset": preset, **_DESCRIPTIONS[preset], "dtype": "float32", "missing_persons": "zeros"}
    if preset in ("pyskl", "clean"):
        info["align_spine"] = bool(align_spine)
        if align_spine:
            info["normalization"] += "; spine (0->1) to +z, then shoulders (4->8) to +x"
    if preset == "ctrgcn":
        info["dataset"] = dataset
        info["missing_persons"] = "copy of the actor" if dataset == "ntu120" else "zeros"
    return info


def _fit_persons(kp: np.ndarray, m: int) -> np.ndarray:
    """Truncate or zero-pad the person axis of ``(P, T, V, C)`` to ``m``."""
    if kp.shape[0] >= m:
        return kp[:m]
    pad = np.zeros((m - kp.shape[0],) + kp.shape[1:], kp.dtype)
    return np.concatenate([kp, pad])


def _count_persons(kp: np.ndarray) -> int:
    return int(np.any(kp.reshape(kp.shape[0], -1) != 0, axis=1).sum())


def _run(skel, preset: str, dataset: str, align_spine: bool, m: int) -> tuple[np.ndarray, int, list[str]]:
    """Dispatch to the preset; returns person-major ``(M, T, V, C)`` data, real persons, notes."""
    if preset in ("pyskl", "clean"):
        kp, notes = sel.select_pyskl(skel) if preset == "pyskl" else dn.select_clean(skel)
        kp, more = nz.pyskl_prenormalize(kp, align_spine)
        kp = _fit_persons(kp, m)
        return kp, _count_persons(kp), notes + more
    if preset == "ctrgcn":
        kp, notes = sel.select_ctrgcn(skel)
        kp = nz.ctrgcn_seq_translation(kp)[:m]
        real = _count_persons(kp)
        kp, more = nz.ctrgcn_second_actor(kp, dataset) if m >= 2 else (kp, [])
        return _fit_persons(kp, m), real, notes + more
    if preset == "msg3d":
        kp, notes = sel.select_msg3d(skel, m)
        kp, more = nz.msg3d_pre_normalization(kp)
        return kp, _count_persons(kp), notes + more
    kp, notes = sel.select_none(skel, m)
    return kp, _count_persons(kp), notes


def preprocess(skel, preset: str = DEFAULT_PRESET, *, dataset: str = "ntu60", align_spine: bool = False,
               max_persons: int = 2) -> PresetResult:
    """Select the persons of one parsed NTU sample and normalise them as ``preset`` does.

    skel         a :class:`skeltools.readers.ntu.SkeletonFile` (finite body-frames only)
    preset       one of :data:`PRESETS`
    dataset      ``"ntu60"`` or ``"ntu120"``; only changes ``ctrgcn``'s second actor of one-actor samples
    align_spine  ``clean``, ``pyskl``: also rotate the spine onto +z and the shoulders onto +x (``msg3d`` always does)
    max_persons  M, the person axis of the result

    Returns a :class:`PresetResult`; raises :class:`EmptySkeletonError` when nothing can be kept and
    ``ValueError`` for an unknown preset or dataset.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if max_persons < 1:
        raise ValueError(f"max_persons must be at least 1, got {max_persons}")
    if skel.num_frames == 0:
        raise EmptySkeletonError("the file has 0 frames")
    if len(skel.frame) == 0:
        raise EmptySkeletonError(f"all {skel.num_frames} frames are empty (no body in any frame)")
    try:
        kp, real, notes = _run(skel, preset, dataset, align_spine, max_persons)
    except sel.NothingToKeep as err:
        raise EmptySkeletonError(str(err)) from None
    data = np.ascontiguousarray(kp.transpose(1, 0, 2, 3), dtype=np.float32)
    return PresetResult(data=data, n_persons=real, notes=tuple(notes))
