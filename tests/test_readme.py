"""Every example of the README runs: each ```bash block's commands (on small synthetic inputs made where the README
names a dataset folder, with sizes cut down where training would take long) and each ```python block.

A command that cannot run here (installs, clusters, multi-node torchrun) must match one entry of ``NOT_RUN``, which
says why and where it is tested instead; any other command that is not a ``skeltools`` call fails the test, so a
new README example is either run or consciously listed.
"""
from __future__ import annotations

import pickle
import re
import shlex
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from click.testing import CliRunner

from skeltools.cli import main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

NOT_RUN = {  # regex on the command -> why it is not run here
    r"^python3 -m venv ": "the quick start's install line is what CI runs (.ci/run)",
    r"^\. \.venv/bin/activate && python -m pytest": "the test command itself",
    r"^dask (scheduler|worker) ": "starts a Dask cluster; tests/test_dask_engine.py runs a local one",
    r"--engine dask --scheduler tcp://head-node": "needs a Dask cluster; tests/test_dask_engine.py covers the engine",
    r"^torchrun ": "multi-process launch; tests/test_train.py runs DDP under torchrun",
    r"--devices 0,1,2,3": "needs 4 GPUs; tests/test_reproduce.py runs the parallel (subprocess) path on CPU",
}

TRAIN_SMALL = ["--epochs", "1", "--clip-len", "8"]  # the recipe otherwise, batch size included


def _ntu(n: int, seed: int, dataset: str = "ntu60") -> Callable[[Path], None]:
    def make(path: Path) -> None:
        from skeltools.synth import write_ntu_corpus

        write_ntu_corpus(path, n, seed=seed, dataset=dataset, num_classes=4)
    return make


def _one_ntu_file(path: Path) -> None:
    from skeltools.synth import write_ntu_corpus

    first = write_ntu_corpus(path.parent / "_long", 1, seed=9, num_classes=1, frames_range=(90, 100))[0]
    shutil.copy(first, path)


def _store(path: Path) -> None:
    from skeltools.convert import convert_ntu

    _ntu(24, 3)(path.parent / "_raw")
    convert_ntu([path.parent / "_raw"], path, progress=False, workers=1)


def _store_ntu120(path: Path) -> None:
    from skeltools.convert import convert_ntu

    _ntu(24, 7, "ntu120")(path.parent / "_raw120")
    convert_ntu([path.parent / "_raw120"], path, dataset="ntu120", progress=False, workers=1)


def _store_smarthome_cv(path: Path) -> None:
    from skeltools.convert_smarthome import convert_smarthome
    from skeltools.synth_sets import write_smarthome_corpus

    write_smarthome_corpus(path.parent / "_sh_cv", 40, seed=3, frames_range=(20, 40))
    convert_smarthome([path.parent / "_sh_cv"], path, dataset="smarthome_cv", progress=False, workers=1)


def _run(arch: str, modality: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        store = path.parent.parent / "ntu60.zarr"
        if not store.exists():
            _store(store)
        invoke("train", "--arch", arch, "--store", store, "--modality", modality, "-o", path, *TRAIN_SMALL)
        invoke("test", path, "--clips", "2")
    return make


def _reference_checkpoint(path: Path) -> None:
    import torch

    from trainer.models import build_model, export_reference_state_dict

    torch.manual_seed(0)
    model = build_model("stgcn", num_classes=60)
    torch.save(export_reference_state_dict(model, source="pyskl"), path)


def _smarthome_json(path: Path) -> None:
    from skeltools.synth_sets import write_smarthome_corpus

    write_smarthome_corpus(path, 12, seed=2, frames_range=(20, 40))


def _smarthome_kpts(path: Path) -> None:
    from skeltools.synth_sets import write_smarthome_corpus

    rng = np.random.default_rng(4)
    path.mkdir(parents=True)
    for json_file in write_smarthome_corpus(path.parent / "_sh", 6, seed=5, frames_range=(20, 30)):
        clip = json_file.name.removesuffix("_pose3d.json")
        kpts = rng.uniform(0, 640, size=(25, 17, 2)).astype(np.float32)
        np.savez(path / f"{clip}_LCRNet2d.npz", kpts=kpts)


def _babel_release(path: Path) -> None:
    rng = np.random.default_rng(1)
    path.mkdir(parents=True)
    for part, n in (("train", 4), ("val", 2)):
        np.save(path / f"{part}_ntu_sk_60.npy", rng.normal(size=(n, 3, 150, 25, 1)).astype(np.float32))
        labels = ([f"{part}{k}" for k in range(n)], ([k % 3 for k in range(n)], list(range(n)), [0] * n,
                                                       ["a"] * n))
        (path / f"{part}_label_60.pkl").write_bytes(pickle.dumps(labels))


def _babel_joints(path: Path) -> None:
    from skeltools.synth_sets import write_babel_corpus

    root = path.parent
    made = write_babel_corpus(root / "_babel", 4, seed=1)
    shutil.move(made["joints"], root / "joint_pos")
    shutil.move(made["babel_json"], root / "babel_v1.0_release")
    shutil.move(made["fps_table"], root / "featp_2_fps.json")


def _amass(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, poses=np.zeros((40, 156), np.float32), trans=np.zeros((40, 3), np.float32),
             gender=np.array("female"), mocap_framerate=np.array(120.0))


def _openpose(fmt: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        from skeltools.synth import write_openpose_corpus

        write_openpose_corpus(path, 6, seed=2, format=fmt, model="body25" if fmt == "frames" else "coco18",
                              frames=24)
        if fmt == "frames":
            shutil.move(path / "labels.csv", path.parent / "labels.csv")
    return make


def _dump(path: Path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def _pyskl_3d(path: Path) -> None:
    from skeltools.export import export_store

    _store(path.parent / "_pyskl.zarr")
    export_store(path.parent / "_pyskl.zarr", "pyskl", path)


def _annotations_2d(names: list[str], classes: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"frame_dir": name, "label": k % classes, "total_frames": 20, "img_shape": (1080, 1920),
             "original_shape": (1080, 1920),
             "keypoint": rng.uniform(0, 1000, (2, 20, 17, 2)).astype(np.float16),
             "keypoint_score": rng.uniform(0, 1, (2, 20, 17)).astype(np.float16)} for k, name in enumerate(names)]


def _pyskl_ntu_2d(path: Path) -> None:
    names = [f"S001C00{c}P00{p}R001A00{a}" for c in (1, 2) for p in (1, 2) for a in (1, 2)]
    anns = _annotations_2d(names, 60, 1)
    for ann, name in zip(anns, names):
        ann["label"] = int(name[-3:]) - 1
    _dump(path, {"split": {"xsub_train": names[:4], "xsub_val": names[4:]}, "annotations": anns})


def _pyskl_hmdb(path: Path) -> None:
    names = [f"clip_{k}" for k in range(8)]
    _dump(path, {"split": {"train1": names[:6], "test1": names[6:]}, "annotations": _annotations_2d(names, 51, 2)})


def _pyskl_kinetics(path: Path) -> None:
    rng = np.random.default_rng(3)
    kpfiles = path.parent / "kpfiles"
    kpfiles.mkdir()
    videos = {f"vid_{k}": rng.uniform(1, 100, (6, 17, 3)).astype(np.float16) for k in range(4)}
    _dump(kpfiles / "part_0.pkl", {v: {"keypoint": kp} for v, kp in videos.items()})
    toc = [{"frame_dir": v, "label": k, "total_frames": 6, "raw_file": "/data/k400/kpfiles/part_0.pkl",
            "frame_inds": np.arange(6), "box_score": np.full(6, 0.9), "img_shape": (340, 256),
            "original_shape": (340, 256)} for k, v in enumerate(videos)]
    _dump(path, {"split": {"train": ["vid_0", "vid_1", "vid_2"], "val": ["vid_3"]}, "annotations": toc})


def _mmpose(joints: int, wrapped: bool) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        import json

        rng = np.random.default_rng(joints)
        path.mkdir(parents=True)
        for k in range(4):
            frames = [{"frame_id": t, "instances": [
                {"keypoints": rng.uniform(0, 1000, (joints, 2)).tolist(), "keypoint_scores": [0.9] * joints,
                 "bbox": [[100, 100, 400, 900]], "bbox_score": 0.99}]} for t in range(12)]
            meta = {"dataset_name": "coco", "num_keypoints": joints}
            doc = {"meta_info": meta, "instance_info": frames} if wrapped else frames
            (path / f"clip{k}.json").write_text(json.dumps(doc))
        (path.parent / "labels_train.csv").write_text("video,label\nclip0,0\nclip1,1\nclip2,0\nclip3,1\n")
    return make


INPUTS: dict[str, Callable[[Path], None]] = {  # a path the README names as input -> how to make a small one
    "nturgb+d_skeletons": _ntu(16, 1),
    "s001_s017": _ntu(8, 2),
    "s018_s032": _ntu(8, 3, "ntu120"),
    "batch1": _ntu(8, 4),
    "batch2": _ntu(8, 5),
    "raw": _ntu(6, 6),
    "long.skeleton": _one_ntu_file,
    "ntu60.zarr": _store,
    "ntu120.zarr": _store_ntu120,
    "smarthome_cv.zarr": _store_smarthome_cv,
    "runs/j": _run("dgstgcn", "j"),
    "runs/b": _run("dgstgcn", "b"),
    "runs/jm": _run("dgstgcn", "jm"),
    "runs/bm": _run("dgstgcn", "bm"),
    "runs/dgstgcn_j": _run("dgstgcn", "j"),
    "stgcn_j.pth": _reference_checkpoint,
    "skeletonv12": _smarthome_json,
    "kpts": _smarthome_kpts,
    "release": _babel_release,
    "joint_pos": _babel_joints,
    "babel_v1.0_release": _babel_joints,
    "featp_2_fps.json": _babel_joints,
    "CMU/01/01_01_poses.npz": _amass,
    "kinetics_raw": _openpose("kinetics"),
    "json": _openpose("frames"),
    "labels.csv": _openpose("frames"),
    "ntu60_3danno.pkl": _pyskl_3d,
    "ntu120_hrnet.pkl": _pyskl_ntu_2d,
    "hmdb51_hrnet.pkl": _pyskl_hmdb,
    "k400_hrnet.pkl": _pyskl_kinetics,
    "predictions": _mmpose(17, wrapped=True),
    "labels_train.csv": _mmpose(17, wrapped=True),
    "rtmw_out": _mmpose(133, wrapped=False),
}


def invoke(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, f"skeltools {' '.join(map(str, args))}\n{result.output}"
    return result.output


def readme_blocks() -> list[tuple[str, int, str]]:
    """(language, first line number, text) of every fenced block of the README."""
    text = README.read_text()
    return [(m.group(1), text[:m.start()].count("\n") + 2, m.group(2))
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)]


def commands(block: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def small(args: list[str]) -> list[str]:
    """Cut a command's sizes down for the test: one worker, training for one epoch on short clips."""
    args = ["1" if prev == "--workers" else a for prev, a in zip([""] + args, args)]
    if args[:1] == ["train"]:
        for option, value in zip(TRAIN_SMALL[::2], TRAIN_SMALL[1::2]):
            args += [option, value] if option not in args else []
    if args[:1] == ["reproduce"] and "--epochs" not in args:
        args += ["--epochs", "1", "--set", "clip_len=8"]
    if args[:1] == ["test"] and "--clips" in args:
        args[args.index("--clips") + 1] = "2"
    return args


OUTPUT_OPTIONS = ("-o", "--output", "--onnx")


def make_inputs(args: list[str], where: Path) -> None:
    """Make the inputs a command names (never its outputs) that do not exist yet."""
    for prev, arg in zip([""] + args, args):
        key = arg.rstrip("/")
        if prev in OUTPUT_OPTIONS:
            continue
        if key in INPUTS and not (where / key).exists():
            INPUTS[key](where / key)


BLOCKS = [b for b in readme_blocks() if b[0] in ("bash", "python")]


def test_the_readme_has_runnable_examples():
    assert sum(lang == "bash" for lang, _, _ in BLOCKS) >= 8
    assert any(lang == "python" for lang, _, _ in BLOCKS)


@pytest.mark.parametrize("lang,line,text", BLOCKS, ids=[f"{lang}-line{line}" for lang, line, _ in BLOCKS])
def test_readme_block_runs(lang, line, text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    if lang == "python":
        for name in re.findall(r'"([\w./+-]+\.zarr)"', text):
            make_inputs([name], tmp_path)
        exec(compile(text, f"README.md:{line}", "exec"), {})
        return
    ran = 0
    for command in commands(text):
        if any(re.search(pattern, command) for pattern in NOT_RUN):
            continue
        argv = shlex.split(command)
        assert argv[0] == "skeltools", (f"README.md:{line}: {command!r} is neither a skeltools command nor listed "
                                        f"in NOT_RUN with a reason")
        args = small(argv[1:])
        make_inputs(args, tmp_path)
        invoke(*args)
        ran += 1
    assert ran or all(any(re.search(p, c) for p in NOT_RUN) for c in commands(text))
