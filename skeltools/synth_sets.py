"""Synthetic Toyota Smarthome LCR-Net JSON and BABEL joint-position files, format-faithful and class-dependent.

Poses are a rest skeleton moved by one sinusoidal limb swing whose joint, frequency and amplitude depend on the
class, so a model can learn the classes; the files carry the format's awkward parts (empty frames, several
detections, coordinate-major lists; mocap frame rates of 120/100/60/59.94 fps, BABEL's 219-wide ``joint_pos``).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from schemas.datasets import (SMARTHOME_CLASSES, babel_action_index, babel_sid_splits, ntu_class_names,
                              smarthome_split_lists)

# LCR-Net 13 joints (native order, see schemas.layouts.SMARTHOME13) at rest, metres, y up, person at the origin.
_LCR_REST = np.array([
    (-.10, -.85, 0), (.10, -.85, 0), (-.10, -.45, 0), (.10, -.45, 0), (-.10, 0, 0), (.10, 0, 0),
    (-.22, .05, 0), (.22, .05, 0), (-.20, .30, 0), (.20, .30, 0), (-.18, .55, 0), (.18, .55, 0), (0, .75, 0),
], np.float32)
# Joint groups one class moves: wrists + elbows, ankles + knees, head.
LCR_SWING = ((6, 8), (7, 9), (0, 2), (1, 3), (12,))
NTU_SWING = ((6, 5), (10, 9), (14, 13), (18, 17), (3,))


def class_motion(rest: np.ndarray, label: int, frames: int, rng: np.random.Generator,
                 swing: tuple[tuple[int, ...], ...] = LCR_SWING) -> np.ndarray:
    """``(T, V, 3)``: ``rest`` (V, 3) with the ``swing`` joints of class ``label`` swinging; frequency set by the
    class."""
    t = np.arange(frames, dtype=np.float32)[:, None]
    out = np.repeat(rest[None], frames, axis=0) + rng.normal(0, 0.005, (frames, *rest.shape)).astype(np.float32)
    joints = list(swing[label % len(swing)])
    freq = 0.02 + 0.015 * (label // len(swing) % 7)
    phase = rng.uniform(0, 2 * np.pi)
    out[:, joints, 1] += 0.2 * np.sin(2 * np.pi * freq * t + phase)
    out[:, joints, 2] += 0.1 * np.cos(2 * np.pi * freq * t + phase)
    return out


def _pixels(xyz: np.ndarray) -> np.ndarray:
    """A person about 3 m from a 640x480 camera: ``(..., 3)`` metres -> ``(..., 2)`` pixels."""
    return np.stack([320 + 120 * xyz[..., 0], 240 - 120 * xyz[..., 1]], axis=-1)


def smarthome_document(poses: np.ndarray, empty: np.ndarray, extra: np.ndarray) -> dict:
    """The v1.2 JSON of one clip: ``poses`` ``(T, 13, 3)``; frames where ``empty`` have no detection, frames
    where ``extra`` get a second, shifted detection after the real one."""
    frames = []
    for pose, is_empty, has_extra in zip(poses, empty, extra):
        people = [] if is_empty else [pose] + ([pose + np.float32([1.5, 0, 0])] if has_extra else [])
        frames.append([{"pose2d": [round(float(v), 3) for v in _pixels(p).T.ravel()],
                        "pose3d": [round(float(v), 5) for v in p.T.ravel()]} for p in people])
    return {"njts": 13, "K": 5, "frames": frames}


def write_smarthome_corpus(out_dir, samples: int, seed: int = 0, *, frames_range: tuple[int, int] = (40, 300),
                           empty_ratio: float = 0.05, extra_ratio: float = 0.1) -> list[Path]:
    """Write ``samples`` ``<clip>_pose3d.json`` files named after clips of the official CS lists (drawn at random,
    so every part gets some), cycling through the 31 classes; the same arguments give the same files."""
    names = sorted(n for (p, _), names in smarthome_split_lists().items() if p == "cs" for n in names)
    order = np.random.default_rng(seed)
    by_class = {c: order.permutation([n for n in names if n.startswith(c + "_")]) for c in SMARTHOME_CLASSES}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(samples):
        rng = np.random.default_rng([seed, i])
        label = i % len(SMARTHOME_CLASSES)
        clips = by_class[SMARTHOME_CLASSES[label]]
        name = clips[(i // len(SMARTHOME_CLASSES)) % len(clips)]
        frames = int(rng.integers(*frames_range))
        poses = class_motion(_LCR_REST, label, frames, rng)
        doc = smarthome_document(poses, rng.random(frames) < empty_ratio, rng.random(frames) < extra_ratio)
        path = out / f"{name}_pose3d.json"
        path.write_text(json.dumps(doc, separators=(",", ":")))
        paths.append(path)
    return paths


BABEL_FPS = (120.0, 100.0, 60.0, 59.94)


def babel_record(sid: int, feat_p: str, dur: float, cats: tuple[str, str], rng: np.random.Generator) -> dict:
    """A dense BABEL record: frame labels (an overlap and a two-category segment), or sequence labels only."""
    seg = lambda i, cat, start, end: {"seg_id": f"{sid:06d}-{i}", "raw_label": cat, "proc_label": cat,
                                      "act_cat": cat if isinstance(cat, list) else [cat], "start_t": start,
                                      "end_t": end}
    anntr = {"anntr_id": f"annotator-{sid % 3}", "babel_lid": f"lid-{sid}", "mul_act": True}
    if rng.random() < 0.2:
        whole = seg(0, cats[0], 0, dur)
        del whole["start_t"], whole["end_t"]
        return {"babel_sid": sid, "dur": dur, "feat_p": feat_p, "seq_ann": anntr | {"labels": [whole]},
                "frame_ann": None}
    cut = round(float(rng.uniform(0.4, 0.7)) * dur, 3)
    labels = [seg(0, cats[0], 0, cut), seg(1, [cats[1], cats[0]], round(cut - 0.2, 3), round(dur + 0.004, 3)),
              seg(2, "transition", cut, cut)]
    labels[2]["act_cat"] = None
    return {"babel_sid": sid, "dur": dur, "feat_p": feat_p, "seq_ann": anntr | {"labels": [seg(3, cats[0], 0, dur)]},
            "frame_ann": anntr | {"labels": labels}}


def write_babel_corpus(out_dir, sequences: int, seed: int = 0, *, num_classes: int = 10,
                       seconds_range: tuple[float, float] = (3.0, 12.0)) -> dict[str, Path]:
    """BABEL's ``--from joints`` inputs: ``out_dir/babel/{train,val}.json``, ``out_dir/featp_2_fps.json`` and
    ``out_dir/joints/<AMASS dir>/<subject>/<name>_poses.npz`` (``joint_pos (T, 219)`` at 120/100/60/59.94 fps,
    NTU joints at the slots BABEL picks, plus ``mocap_framerate``). Sequence ids come from ``amass_splits.json``;
    categories are the first ``num_classes`` of BABEL's list. Returns the three paths by name."""
    from skeltools.readers.babel import SMPLH_TO_NTU
    from skeltools.synth import rest_pose

    out = Path(out_dir)
    names = {i: n for n, i in babel_action_index().items()}
    by_split = {split: sorted(s for s, p in babel_sid_splits().items() if p == split) for split in ("train", "val")}
    docs: dict[str, dict] = {"train": {}, "val": {}}
    fps_table = {}
    for i in range(sequences):
        rng = np.random.default_rng([seed, i])
        split = "val" if i % 4 == 3 else "train"
        sid = by_split[split][i * 37 % len(by_split[split])]
        fps = BABEL_FPS[i % len(BABEL_FPS)]
        dur = round(float(rng.uniform(*seconds_range)), 3)
        frames = int(dur * fps)
        label = i % num_classes
        ntu = class_motion(rest_pose().astype(np.float32), label, frames, rng, NTU_SWING) + np.float32([0, 0.9, 0])
        joint_pos = np.zeros((frames, 73, 3), np.float32)
        joint_pos[:, list(SMPLH_TO_NTU)] = ntu
        ds, amass_dir = ("BMLrub", "BioMotionLab_NTroje") if i % 2 else ("CMU", "CMU")
        rel = Path(amass_dir if i % 2 else ds, f"s{i % 5:02d}", f"seq {i:04d}_poses.npz")
        path = out / "joints" / ("BMLrub" if i % 2 else ds) / rel.parent.name / rel.name
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, joint_pos=joint_pos.reshape(frames, 219), mocap_framerate=np.float64(fps),
                 gender=np.str_("male"))
        feat_p = f"{ds}/{rel.as_posix()}"
        fps_table[feat_p] = fps
        docs[split][str(sid)] = babel_record(sid, feat_p, dur, (names[label], names[(label + 1) % num_classes]), rng)
    (out / "babel").mkdir(parents=True, exist_ok=True)
    for split, doc in docs.items():
        (out / "babel" / f"{split}.json").write_text(json.dumps(doc))
    (out / "featp_2_fps.json").write_text(json.dumps(fps_table))
    return {"babel_json": out / "babel", "joints": out / "joints", "fps_table": out / "featp_2_fps.json"}


# NTU-25 joint of each joint of examples/upper_body13.toml: head, neck, spine (3), both arms (shoulder to hand).
UPPER_BODY13_FROM_NTU = (3, 2, 20, 1, 0, 4, 5, 6, 7, 8, 9, 10, 11)


def ntu_keypoints(sample) -> np.ndarray:
    """A synthetic NTU sample's performers as ``(T, 2, 25, 3)`` float32, zeros where a performer is not seen."""
    out = np.zeros((sample.num_frames, 2, 25, 3), np.float32)
    actor = sample.actor >= 0
    out[sample.frame[actor], sample.actor[actor]] = sample.xyz[actor]
    return out


def _write_keypoints(path: Path, data: np.ndarray, fmt: str, axes: str) -> Path:
    """Save ``(T, M, V, C)`` ``data`` as ``path.{fmt}``: an array in ``axes`` order, or a long-format CSV."""
    if fmt == "csv":
        t, m, v = np.nonzero((data != 0).any(-1))
        lines = ["frame,person,joint," + ",".join("xyzc"[:data.shape[-1]])]
        lines += [f"{a},{b},{c}," + ",".join(f"{x:.9g}" for x in data[a, b, c]) for a, b, c in zip(t, m, v)]
        out = path.with_suffix(".csv")
        out.write_text("\n".join(lines) + "\n")
        return out
    array = {"TMVC": data, "MTVC": data.transpose(1, 0, 2, 3), "TVC": data[:, 0]}[axes]
    out = path.with_suffix(f".{fmt}")
    np.save(out, array) if fmt == "npy" else np.savez_compressed(out, keypoints=array)
    return out


def write_generic_corpus(out_dir, samples: int, seed: int = 0, *, fmt: str = "npy", axes: str = "TMVC",
                         joints: tuple[int, ...] | None = None, num_classes: int = 3) -> list[Path]:
    """Inputs of ``convert generic``: ``keypoints/clipNNNN.{npy,npz,csv}`` from the NTU synth (performers only,
    ``joints``: the NTU-25 joints to keep, e.g. ``UPPER_BODY13_FROM_NTU``; all by default) and ``labels.csv``
    (``sample_id,label`` with the NTU class names). ``TVC`` keeps the first performer only."""
    from skeltools.synth import corpus_actions, generate_ntu_sample

    out = Path(out_dir)
    (out / "keypoints").mkdir(parents=True, exist_ok=True)
    actions = corpus_actions(samples, num_classes)
    paths, rows = [], [("sample_id", "label")]
    for i, action in enumerate(actions):
        sample = generate_ntu_sample(np.random.default_rng([seed, i]), action, noise_body_ratio=0.0)
        data = ntu_keypoints(sample)[:, :, list(joints) if joints else slice(None)]
        paths.append(_write_keypoints(out / "keypoints" / f"clip{i:04d}", data, fmt, axes))
        rows.append((f"clip{i:04d}", ntu_class_names()[action - 1]))
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return paths
