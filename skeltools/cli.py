"""The ``skeltools`` command line. Commands are thin; heavy imports (numba, zarr, torch) happen inside them."""
from __future__ import annotations

import functools
import os
import shutil
import sys
import time
from pathlib import Path

import click

from skeltools import __version__


TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
OPTIONAL_MODULES = {  # module -> how to install it
    "torch": f'pip install "torch==2.13.0" --index-url {TORCH_CPU_INDEX} (CPU build; on a GPU machine '
             f'pip install "torch==2.13.0"), or pip install "skeltools[train]"',
    "matplotlib": "pip install 'skeltools[viz]'",
    "onnx": "pip install 'skeltools[onnx]'",
    "onnxruntime": "pip install 'skeltools[onnx]'",
    "dask": "pip install 'skeltools[dask]'",
    "distributed": "pip install 'skeltools[dask]'",
}


class _Group(click.Group):
    """Turns any error into one clear line and exit code 1; ``--debug`` shows the traceback instead."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted; rerun the same command to resume", err=True)
            ctx.exit(130)
        except ModuleNotFoundError as exc:
            if exc.name not in OPTIONAL_MODULES or (ctx.find_root().params or {}).get("debug"):
                raise
            click.echo(f"error: {ctx.invoked_subcommand or ctx.info_name} needs {exc.name}, which is not installed: "
                       f"{OPTIONAL_MODULES[exc.name]}", err=True)
            ctx.exit(1)
        except Exception as exc:  # noqa: BLE001 - the CLI boundary
            if (ctx.find_root().params or {}).get("debug") or os.environ.get("SKELTOOLS_DEBUG"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="skeltools")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def main(debug: bool) -> None:
    """Skeleton action-recognition datasets: convert raw data to zarr stores, derive modalities, train.

    \b
    Quick start:
      skeltools synth ntu raw/ --samples 200
      skeltools convert ntu raw/ -o ntu.zarr
      skeltools info ntu.zarr
    """


@main.group(cls=_Group)
def convert() -> None:
    """Convert a raw skeleton dataset into a store."""


def conversion_options(command):
    """The options every ``convert`` subcommand shares: how the conversion runs (workers or a Dask cluster),
    strictness, replacing or appending to the output, and progress output.

    The command receives them as ``run`` (``skeltools.convert.RunOptions`` fields) and ``log``, and returns its
    report; this wrapper prints the summary. With ``--engine dask`` path arguments are made absolute, since the
    workers do not share our working directory.
    """
    @click.option("--workers", type=int, default=None,
                  help="Worker processes of the local engine (default: all cores).")
    @click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                  help="local: a process pool on this machine; dask: the Dask cluster at --scheduler "
                       "(inputs and output on a filesystem every worker sees; pip install skeltools[dask]).")
    @click.option("--scheduler", default=None, metavar="ADDRESS",
                  help="Dask scheduler address for --engine dask, e.g. tcp://head-node:8786.")
    @click.option("--append", is_flag=True,
                  help="Add new files to the existing store at OUTPUT (same options; sample ids already in it are "
                       "skipped and reported).")
    @click.option("--keep-going", is_flag=True, help="Publish the store even if some files failed (they are reported).")
    @click.option("--overwrite", is_flag=True, help="Replace an existing store at OUTPUT.")
    @click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
    @functools.wraps(command)
    def wrapper(*args, workers, engine, scheduler, append, keep_going, overwrite, quiet, **kwargs):
        if engine == "dask":
            args, kwargs = _absolute(args), {k: _absolute(v) for k, v in kwargs.items()}
        run = {"workers": workers, "engine": engine, "scheduler": scheduler, "append": append,
               "keep_going": keep_going, "overwrite": overwrite, "progress": not quiet}
        log = (lambda m: None) if quiet else (lambda m: click.echo(m, err=True))
        t0 = time.perf_counter()
        report = command(*args, run=run, log=log, **kwargs)
        _summary(kwargs["output"], report, time.perf_counter() - t0, append)

    return wrapper


def _absolute(value):
    """Paths (also inside tuples) made absolute; anything else as is."""
    if isinstance(value, Path):
        return value.absolute()
    if isinstance(value, tuple):
        return tuple(_absolute(v) for v in value)
    return value


def _summary(output: Path, report: dict, seconds: float, append: bool) -> None:
    c = report["counts"]
    if append and not c["converted"]:
        click.echo(f"{output}: nothing new to append, {c['duplicates']} sample(s) already in the store; unchanged")
        return
    samples = c.get("samples", c["converted"])
    files = f" from {c['converted']} files" if samples != c["converted"] else ""
    click.echo(f"{output}: {'appended ' if append else ''}{samples} samples{files}, {c['frames']} frames "
               f"({report['dataset']}); {c['skipped']} skipped, {c['failed']} failed"
               f"{', %d already in the store' % c['duplicates'] if append else ''}; {seconds:.1f} s, "
               f"{c['frames'] / seconds:.0f} frames/s")
    if c["failed"]:
        click.echo(f"warning: {c['failed']} file(s) failed; see {output / 'report.json'}", err=True)


def person_options(command):
    """``--persons`` and ``--max-persons`` of the 2D sources whose files list people per frame (OpenPose, MMPose)."""
    command = click.option("--max-persons", type=int, default=2, show_default=True,
                           help="Person slots M per frame.")(command)
    return click.option("--persons", type=click.Choice(["track", "stgcn"]), default="track", show_default=True,
                        help="track: identities kept across frames; stgcn: st-gcn's per-frame sort by score "
                             "(top M).")(command)


@convert.command("ntu")
@click.argument("raw_dirs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Store to create (NAME.zarr).")
@click.option("--dataset", type=click.Choice(["ntu60", "ntu120"]), default=None,
              help="Class set and split rules. Default: ntu120 if any file is S018+ or A061+, else ntu60.")
@click.option("--preset", type=click.Choice(["clean", "pyskl", "ctrgcn", "msg3d", "none"]), default="clean",
              show_default=True, help="Body selection + normalization: clean (our denoising, pyskl's normalization) "
              "or the reference a faithful preset reproduces (pyskl: the reference default).")
@click.option("--align-spine", is_flag=True, help="clean/pyskl presets: also rotate spine to +z and shoulders to +x.")
@click.option("--exclude-list", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Sample names to skip, replacing the official missing-skeleton list (an empty file disables it).")
@click.option("--shard-frames", type=int, default=32768, show_default=True, help="Frames per shard file.")
@conversion_options
def convert_ntu_cmd(raw_dirs, output, dataset, preset, align_spine, exclude_list, shard_frames, run, log) -> dict:
    """Convert NTU RGB+D 60/120 .skeleton files (folders are searched recursively).

    \b
    Example:
      skeltools convert ntu nturgb+d_skeletons/ -o ntu60.zarr --dataset ntu60 --preset pyskl
      skeltools convert ntu new_skeletons/ -o ntu60.zarr --append
    """
    from skeltools.convert import convert_ntu

    return convert_ntu(raw_dirs, output, dataset=dataset, preset=preset, align_spine=align_spine,
                       exclude_list=exclude_list, shard_frames=shard_frames, log=log, **run)


@convert.command("openpose")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Store to create (NAME.zarr).")
@click.option("--format", "format_", type=click.Choice(["kinetics", "frames"]), default="kinetics", show_default=True,
              help="kinetics: one Kinetics-Skeleton JSON per video; frames: OpenPose per-frame JSON files.")
@click.option("--model", type=click.Choice(["coco18", "body25", "body25b"]), default="coco18", show_default=True,
              help="OpenPose model that wrote the keypoints (the files do not say; BODY_25 and BODY_25B both have 25).")
@click.option("--labels", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Label file: CSV video,label or JSON {video: label} / kinetics_*_label.json (repeatable). "
                   "Without one, videos are unlabelled (-1) unless a Kinetics file has its own label_index.")
@click.option("--dataset", type=click.Choice(["kinetics400"]), default=None,
              help="Class names and the kinetics_train/kinetics_test split columns (from the label file names).")
@person_options
@click.option("--normalize", type=click.Choice(["stgcn", "none"]), default="stgcn", show_default=True,
              help="stgcn: x, y in [0, 1] minus 0.5, zeroed where the score is 0; none: as read.")
@click.option("--image-size", nargs=2, type=float, default=None, metavar="W H",
              help="Frame size in pixels: x, y are divided by it first (needed for frames with --normalize stgcn).")
@click.option("--flip-y", is_flag=True, help="Negate y after normalizing (the 2s-AGCN / MS-G3D Kinetics data).")
@click.option("--as-coco18", is_flag=True,
              help="Store BODY_25 or BODY_25B keypoints as COCO-18 (joints by name; BODY_25B's neck: the shoulders' "
                   "midpoint).")
@click.option("--split-ratio", type=float, default=None,
              help="Add a seeded split stratified per class: generic_train (this fraction) / generic_test.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --split-ratio.")
@conversion_options
def convert_openpose_cmd(inputs, output, format_, model, labels, dataset, persons, max_persons, normalize, image_size,
                         flip_y, as_coco18, split_ratio, seed, run, log) -> dict:
    """Convert OpenPose per-frame JSON or Kinetics-Skeleton JSON (folders are searched recursively).

    \b
    Example:
      skeltools convert openpose kinetics_raw/ -o kinetics.zarr --format kinetics --dataset kinetics400
      skeltools convert openpose json/ -o clips.zarr --format frames --model body25 --image-size 1920 1080
    """
    from skeltools.convert_openpose import convert_openpose

    return convert_openpose(inputs, output, format=format_, model=model, labels=labels, dataset=dataset,
                            persons=persons, max_persons=max_persons, normalize=normalize, image_size=image_size,
                            flip_y=flip_y, as_coco18=as_coco18, split_ratio=split_ratio, seed=seed, log=log, **run)


@convert.command("smarthome")
@click.argument("pose_dirs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Store to create (NAME.zarr).")
@click.option("--dataset", type=click.Choice(["smarthome", "smarthome_cv"]), default="smarthome", show_default=True,
              help="smarthome: 31 classes, cross-subject (cs); smarthome_cv: 19 classes, cross-view (cv1, cv2).")
@click.option("--format", "fmt", type=click.Choice(["json", "npz"]), default=None,
              help="LCR-Net JSON (v1.1/v1.2) or the 2D keypoint npz (kpts). Default: whichever the folders hold.")
@click.option("--coords", type=click.Choice(["xyz", "xy"]), default=None,
              help="JSON: pose3d (xyz, default) or pose2d (xy). npz: xy.")
@conversion_options
def convert_smarthome_cmd(pose_dirs, output, dataset, fmt, coords, run, log) -> dict:
    """Convert Toyota Smarthome (trimmed) pose files; splits come from the official lists.

    Clips of classes outside the dataset (the 14 Pour.Fromcup clips of the CS lists, or the 12 classes the
    cross-view protocols leave out) and clips on none of its lists are reported and skipped.

    \b
    Example:
      skeltools convert smarthome skeletonv12/ -o smarthome_cs.zarr --dataset smarthome
      skeltools convert smarthome skeletonv12/ -o smarthome_cv.zarr --dataset smarthome_cv --coords xy
    """
    from skeltools.convert_smarthome import convert_smarthome

    return convert_smarthome(pose_dirs, output, dataset=dataset, fmt=fmt, coords=coords, log=log, **run)


@convert.command("generic")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Store to create (NAME.zarr).")
@click.option("--layout", "layout", required=True, metavar="NAME|FILE",
              help="Joint layout: a built-in name (ntu25, coco17, ...) or a .toml/.json layout file.")
@click.option("--labels", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with header sample_id,label[,split column...], or JSON {sample_id: label}.")
@click.option("--axes", type=click.Choice(["TVC", "TMVC", "MTVC"]), default=None,
              help="Axis order of the .npy/.npz arrays (T frames, M persons, V joints, C channels); CSV needs none.")
@click.option("--coords", type=click.Choice(["xyz", "xy", "xyc"]), default="xyz", show_default=True,
              help="Channels: 3D, 2D, or 2D with a confidence score.")
@click.option("--npz-key", default=None, help="Array to read from each .npz (default: its only array).")
@click.option("--class-names", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Class names, one per line, in label order (default: from the labels).")
@click.option("--split-ratio", type=float, default=None,
              help="Add the seeded generic_train/generic_test split with this share of each class in train "
                   "(default 0.8 when the label file has no split columns).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random split.")
@click.option("--max-persons", type=int, default=None, help="Person slots M (default: the most in any file).")
@click.option("--dataset", default="generic", show_default=True, help="Dataset name recorded in the store.")
@conversion_options
def convert_generic_cmd(inputs, output, layout, labels, axes, coords, npz_key, class_names, split_ratio, seed,
                        max_persons, dataset, run, log) -> dict:
    """Convert your own keypoints: one .npy/.npz/.csv file per sample (sample id = file stem), plus labels.

    \b
    Arrays: axis order given by --axes (TVC, TMVC or MTVC). CSV: one row per keypoint with the header
    frame,person,joint,<channel>... (e.g. frame,person,joint,x,y,z); frame and person 0-based, joint an index or
    a joint name; keypoints without a row are 0.
    Labels: all integers -> 0-based classes "0".."K-1"; otherwise class names, sorted. Split columns: a column
    {protocol}_{train|val|test} holds 1/0/true/false/yes/no; any other column is a protocol holding
    train/val/test. Without split columns, a seeded per-class split gives generic_train / generic_test
    (train with --split generic).

    \b
    Example:
      skeltools synth generic raw/ --samples 60 --upper-body
      skeltools convert generic raw/keypoints -o mine.zarr --layout examples/upper_body13.toml \\
          --axes TMVC --labels raw/labels.csv --split-ratio 0.8
    """
    from skeltools.convert_generic import convert_generic

    names = None
    if class_names is not None:
        names = [line.strip() for line in class_names.read_text(encoding="utf-8").splitlines() if line.strip()]
    return convert_generic(inputs, output, layout=layout, labels=labels, axes=axes, coords=coords, npz_key=npz_key,
                           class_names=names, split_ratio=split_ratio, seed=seed, max_persons=max_persons,
                           dataset=dataset, log=log, **run)


@convert.command("babel")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Store to create (NAME.zarr).")
@click.option("--from", "source", type=click.Choice(["release", "joints"]), default="release", show_default=True,
              help="release: BABEL's {split}_ntu_sk_{C}.npy + label pickles (already normalised). joints: BABEL "
                   "JSON + per-sequence joint-position npz files, through BABEL's pipeline.")
@click.option("--dataset", type=click.Choice(["babel60", "babel120"]), default="babel60", show_default=True)
@click.option("--babel-json", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="joints: folder of train.json, val.json, test.json (and extra_*.json).")
@click.option("--fps-table", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="joints: BABEL's featp_2_fps.json (default: each file's fps / mocap_framerate key).")
@click.option("--extra", is_flag=True, help="Add the extra annotations (extra_*.json, or the _extra_ release files).")
@conversion_options
def convert_babel_cmd(inputs, output, source, dataset, babel_json, fps_table, extra, run, log) -> dict:
    """Convert BABEL action recognition data (150-frame chunks at 30 fps, NTU-25 joints).

    Raw AMASS npz files hold SMPL-H pose parameters, not joints: computing joints needs the licensed SMPL-H model,
    so such files fail with an explanation (their metadata: skeltools info FILE.npz).

    \b
    Example:
      skeltools convert babel release/ -o babel60.zarr --dataset babel60
      skeltools convert babel joint_pos/ --from joints --babel-json babel_v1.0_release/ \\
          --fps-table featp_2_fps.json -o babel120.zarr --dataset babel120
    """
    from skeltools.convert_babel import convert_babel

    return convert_babel(inputs, output, source=source, dataset=dataset, babel_json=babel_json,
                         fps_table=fps_table, extra=extra, log=log, **run)


_CLASS_SETS = ["ntu60", "ntu120", "kinetics400", "gym99", "ucf101", "hmdb51", "diving48"]  # class names of pose data


@convert.command("pyskl")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Store to create (NAME.zarr).")
@click.option("--dataset", type=click.Choice(_CLASS_SETS), default=None,
              help="Class names. Default: ntu60/ntu120 when every frame_dir is an NTU name, else numbered classes.")
@click.option("--layout", "layout", default=None, metavar="NAME|FILE",
              help="Joint layout (default from V: 25 3D -> ntu25, 17 2D -> coco17, 18 2D -> coco18).")
@click.option("--max-persons", type=int, default=2, show_default=True,
              help="Person slots M: the first M of each annotation, zero-padded (pyskl FormatGCNInput).")
@click.option("--normalize", type=click.Choice(["none", "pyskl"]), default="none", show_default=True,
              help="none: keypoints as stored; pyskl: PreNormalize2D (2D: x, y from img_shape to [-1, 1]).")
@click.option("--kpfiles", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of the Kinetics-400 kpfiles a table of contents (k400_hrnet.pkl) points into by raw_file.")
@click.option("--box-thr", type=float, default=None,
              help="kpfiles: drop skeletons whose box_score is below this (pyskl box_thr with valid_ratio > 0).")
@conversion_options
def convert_pyskl_cmd(inputs, output, dataset, layout, max_persons, normalize, kpfiles, box_thr, run, log) -> dict:
    """Convert pyskl / mmaction2 annotation pickles (a .pkl, a folder of them, or one annotation per file).

    Pickles are read with a restricted unpickler: a file asking for anything but numpy arrays and plain containers
    is refused. Split names become index columns: xsub_train stays, xsub_val -> xsub_test (a protocol's val is its
    test part unless it also has a test part), train1/test1 -> split1_train/split1_test, train/val -> split_train/
    split_test.

    \b
    Example:
      skeltools convert pyskl ntu60_3danno.pkl -o ntu60_3d.zarr
      skeltools convert pyskl ntu120_hrnet.pkl -o ntu120_2d.zarr --normalize pyskl
      skeltools convert pyskl k400_hrnet.pkl --kpfiles kpfiles/ -o k400.zarr --dataset kinetics400
    """
    from skeltools.convert_pyskl import convert_pyskl

    return convert_pyskl(inputs, output, dataset=dataset, layout=layout, max_persons=max_persons,
                         normalize=normalize, kpfiles=kpfiles, box_thr=box_thr, log=log, **run)


@convert.command("mmpose")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Store to create (NAME.zarr).")
@click.option("--labels", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Label file: CSV video,label or JSON {video: label} (repeatable); *_train* / *_val* / *_test* "
                   "file names give the split_train / split_test columns. Without one, videos are unlabelled (-1).")
@click.option("--dataset", type=click.Choice(_CLASS_SETS), default=None,
              help="Class names (default: numbered from the labels).")
@click.option("--layout", "layout", default=None, metavar="NAME|FILE",
              help="Joint layout (default from the keypoint count: 17 coco17, 26 halpe26, 133 wholebody133).")
@click.option("--keep", type=click.Choice(["all", "body"]), default="all", show_default=True,
              help="body: store only the 17 COCO body joints of Halpe-26 / COCO-WholeBody predictions.")
@person_options
@click.option("--normalize", type=click.Choice(["stgcn", "none"]), default="stgcn", show_default=True,
              help="stgcn: pixels / image size - 0.5, zeroed where the score is 0; none: pixels as predicted.")
@click.option("--image-size", nargs=2, type=float, default=None, metavar="W H",
              help="Frame size in pixels, for files whose meta_info does not give one.")
@conversion_options
def convert_mmpose_cmd(inputs, output, labels, dataset, layout, keep, persons, max_persons, normalize, image_size,
                       run, log) -> dict:
    """Convert MMPose / RTMPose prediction JSON, one file per video (folders are searched recursively).

    Reads topdown_demo_with_mmdet.py --save-predictions files ({"meta_info", "instance_info"}) and the
    inferencer's per-video prediction lists ([{"frame_id", "instances"}, ...]).

    \b
    Example:
      skeltools convert mmpose predictions/ -o clips.zarr --labels labels.csv --image-size 1920 1080
      skeltools convert mmpose rtmw/ -o clips_body.zarr --keep body --normalize none
    """
    from skeltools.convert_mmpose import convert_mmpose

    return convert_mmpose(inputs, output, labels=labels, dataset=dataset, layout=layout, keep=keep, persons=persons,
                          max_persons=max_persons, normalize=normalize, image_size=image_size, log=log, **run)


@main.group(cls=_Group)
def synth() -> None:
    """Write synthetic raw corpora (format-faithful, with learnable classes)."""


def _rate(flag: str, default: float, text: str):
    """A per-file rate option of ``synth ntu`` (0..1)."""
    return click.option(flag, type=click.FloatRange(0.0, 1.0), default=default, show_default=True, help=text)


@synth.command("ntu")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--samples", type=int, default=200, show_default=True, help="Number of .skeleton files.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--classes", type=int, default=None, help="Number of action classes (default: all synthetic classes).")
@_rate("--p-empty", 0.03, "Rate of 0-body frames.")
@_rate("--p-noise", 0.15, "Files with a short (<= 11 frames) false body, a flicker.")
@_rate("--p-id-switch", 0.1, "Files whose actor 1 changes bodyID.")
@_rate("--p-id-switch2", 0.0, "Files whose actor 2 changes bodyID.")
@_rate("--p-side-on", 0.0, "Files with an actor side-on, bowing with both arms stretched ahead.")
@_rate("--p-dropout", 0.0, "Files where an actor vanishes for 3-10 frames, same bodyID.")
@_rate("--p-flicker", 0.0, "Files where an actor's bodyID changes for 1-5 frames, then comes back.")
@_rate("--p-furniture", 0.0, "Files with a static, oddly proportioned body in most frames.")
@_rate("--p-late", 0.0, "Two-person files whose second actor enters at 30-60%% of the take.")
def synth_ntu_cmd(out_dir, samples, seed, classes, p_empty, p_noise, p_id_switch, p_id_switch2, p_side_on, p_dropout,
                  p_flicker, p_furniture, p_late) -> None:
    """Write NTU RGB+D-style .skeleton files (CRLF, uint64 body IDs, noise bodies, two-person actions) and their
    ground truth, ground_truth.jsonl (actors' bodyIDs, noise bodies and their kind, empty and dropped-out frames).

    The --p-* rates are per file; the hard cases of body selection are off by default (the files are then the same
    as without these options).

    \b
    Example:
      skeltools synth ntu raw/ --samples 200 --seed 0
      skeltools synth ntu messy/ --samples 1000 --p-side-on 0.05 --p-id-switch2 0.1 --p-dropout 0.1 --p-furniture 0.05
    """
    from skeltools.synth import HardCases, write_ntu_corpus

    kwargs = {} if classes is None else {"num_classes": classes}
    hard = HardCases(side_on_ratio=p_side_on, id_switch2_ratio=p_id_switch2, dropout_ratio=p_dropout,
                     flicker_ratio=p_flicker, furniture_ratio=p_furniture, late_ratio=p_late)
    paths = write_ntu_corpus(out_dir, samples, seed, manifest=True, empty_frame_ratio=p_empty,
                             noise_body_ratio=p_noise, id_switch_ratio=p_id_switch, hard=hard, **kwargs)
    size = sum(p.stat().st_size for p in paths)
    click.echo(f"{out_dir}: {len(paths)} .skeleton files, {size / 1e6:.1f} MB")


@synth.command("openpose")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "format_", type=click.Choice(["frames", "kinetics"]), default="frames", show_default=True,
              help="frames: OpenPose per-frame JSON folders + labels.csv; kinetics: Kinetics-Skeleton files + label files.")
@click.option("--model", type=click.Choice(["coco18", "body25"]), default="coco18", show_default=True,
              help="Keypoint model of the per-frame files (kinetics is always coco18).")
@click.option("--samples", type=int, default=50, show_default=True, help="Number of videos.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--classes", type=int, default=None, help="Number of action classes (default: all synthetic classes).")
def synth_openpose_cmd(out_dir, format_, model, samples, seed, classes) -> None:
    """Write OpenPose-style 2D videos (1920x1080 pixels) built from the NTU synth, with learnable classes.

    \b
    Example:
      skeltools synth openpose raw_op/ --format kinetics --samples 50
      skeltools convert openpose raw_op/ -o op.zarr --format kinetics
    """
    from skeltools.synth import write_openpose_corpus

    if format_ == "kinetics" and model != "coco18":
        raise click.UsageError("Kinetics-Skeleton files are coco18")
    paths = write_openpose_corpus(out_dir, samples, seed, format=format_, model=model, num_classes=classes)
    click.echo(f"{out_dir}: {len(paths)} {'videos' if format_ == 'kinetics' else 'per-frame video folders'} ({model})")


@synth.command("smarthome")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--samples", type=int, default=200, show_default=True, help="Number of _pose3d.json files.")
@click.option("--seed", type=int, default=0, show_default=True)
def synth_smarthome_cmd(out_dir, samples, seed) -> None:
    """Write synthetic Toyota Smarthome LCR-Net v1.2 JSON files (clip names from the official CS lists).

    \b
    Example:
      skeltools synth smarthome raw/ --samples 200 && skeltools convert smarthome raw/ -o smarthome.zarr
    """
    from skeltools.synth_sets import write_smarthome_corpus

    paths = write_smarthome_corpus(out_dir, samples, seed)
    click.echo(f"{out_dir}: {len(paths)} _pose3d.json files, {sum(p.stat().st_size for p in paths) / 1e6:.1f} MB")


@synth.command("babel")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--sequences", type=int, default=40, show_default=True, help="Number of mocap sequences.")
@click.option("--seed", type=int, default=0, show_default=True)
def synth_babel_cmd(out_dir, sequences, seed) -> None:
    """Write synthetic inputs of convert babel --from joints: BABEL JSON, joint-position npz, an fps table.

    \b
    Example:
      skeltools synth babel raw/ --sequences 40
      skeltools convert babel raw/joints --from joints --babel-json raw/babel --fps-table raw/featp_2_fps.json \\
          -o babel.zarr
    """
    from skeltools.synth_sets import write_babel_corpus

    paths = write_babel_corpus(out_dir, sequences, seed)
    click.echo(f"{out_dir}: {sequences} sequences; " + ", ".join(f"{k} {v}" for k, v in paths.items()))


@synth.command("generic")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--samples", type=int, default=60, show_default=True, help="Number of keypoint files.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["npy", "npz", "csv"]), default="npy", show_default=True)
@click.option("--axes", type=click.Choice(["TVC", "TMVC", "MTVC"]), default="TMVC", show_default=True,
              help="Axis order of the arrays (TVC: the first performer only).")
@click.option("--upper-body", is_flag=True, help="The 13 joints of examples/upper_body13.toml instead of NTU-25.")
@click.option("--classes", type=int, default=3, show_default=True, help="Number of action classes.")
def synth_generic_cmd(out_dir, samples, seed, fmt, axes, upper_body, classes) -> None:
    """Write inputs for convert generic: OUT_DIR/keypoints/clipNNNN.{npy,npz,csv} and OUT_DIR/labels.csv.

    \b
    Example:
      skeltools synth generic raw/ --samples 60 --upper-body
      skeltools convert generic raw/keypoints -o mine.zarr --layout examples/upper_body13.toml \\
          --axes TMVC --labels raw/labels.csv
    """
    from skeltools.synth_sets import UPPER_BODY13_FROM_NTU, write_generic_corpus

    paths = write_generic_corpus(out_dir, samples, seed, fmt=fmt, axes=axes, num_classes=classes,
                                 joints=UPPER_BODY13_FROM_NTU if upper_body else None)
    click.echo(f"{out_dir}: {len(paths)} {fmt} files ({axes}, {'upper_body13' if upper_body else 'ntu25'} joints) "
               f"and labels.csv")


@main.command()
@click.argument("layout", required=False, metavar="[NAME|FILE]")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the layout's definition as JSON (a starting point for your own layout file).")
def layout(layout, output) -> None:
    """List the built-in joint layouts, or check and describe one (a name or a .toml/.json layout file).

    \b
    Example:
      skeltools layout
      skeltools layout examples/upper_body13.toml
      skeltools layout coco17 -o my_layout.json
    """
    import json

    from schemas.layouts import LAYOUTS, resolve_layout

    if layout is None:
        for name, item in LAYOUTS.items():
            click.echo(f"{name:12s} {item.num_joints:3d} joints  {item.description}")
        return
    item = resolve_layout(layout)
    item.check()
    names = item.joint_names
    click.echo(f"{item.name}: {item.num_joints} joints, root {names[item.root]}, centre {names[item.center]}"
               + (f"  ({item.description})" if item.description else ""))
    for v, (name, parent) in enumerate(zip(names, item.bone_parents)):
        click.echo(f"  {v:3d} {name:20s} <- {names[parent] if parent != v else '(root)'}")
    if output is not None:
        output.write_text(json.dumps(item.to_dict(), indent=1) + "\n")
        click.echo(f"{output}: written")


@main.command()
@click.argument("store", type=click.Path(exists=True, path_type=Path))
def info(store) -> None:
    """Print what is in a store: dataset, layout, samples, frames, modalities, splits, classes.

    Given an AMASS .npz instead, print its frames, frame rate, gender and whether it holds joint positions.

    \b
    Example:
      skeltools info ntu60.zarr
      skeltools info CMU/01/01_01_poses.npz
    """
    from skeltools.inspect import describe_path

    click.echo(describe_path(store))


@main.command()
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--quick", is_flag=True, help="Metadata only: skip decoding every chunk (checksums, NaN/inf).")
def validate(store, quick) -> None:
    """Check a store: schema and attrs, offsets, index (unique ids, labels in range, disjoint split parts), the
    digests of offsets and index and every shard file with its size as published, every array's shape, NaN/inf,
    and every chunk's checksum. Exit code 1 when anything is wrong.

    \b
    Example:
      skeltools validate ntu60.zarr
      skeltools validate --quick ntu60.zarr
    """
    from skeltools.validate import validate_store

    report = validate_store(store, deep=not quick)
    click.echo(report.text())
    if not report.ok:
        raise SystemExit(1)


@main.command()
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@click.option("--split", default=None, help="Keep one split part, e.g. xsub_train.")
@click.option("--classes", default="", help="Comma-separated class names or 0-based labels to keep.")
@click.option("--max-per-class", type=int, default=None, help="At most N samples per class (first in store order).")
@click.option("--split-ratio", type=float, default=None,
              help="Add a seeded split stratified per class: generic_train (this fraction) / generic_test.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --split-ratio.")
@click.option("--overwrite", is_flag=True)
def subset(store, output, split, classes, max_per_class, split_ratio, seed, overwrite) -> None:
    """Copy part of a store (by split, class and count) into a new store, every modality included; optionally add
    a seeded stratified train/test split (for stores converted without split columns).

    \b
    Example:
      skeltools subset ntu60.zarr -o small.zarr --split xsub_train --classes 0,1,2 --max-per-class 50
      skeltools subset clips.zarr -o clips_split.zarr --split-ratio 0.8 --seed 0   # then train --split generic
    """
    from skeltools.reshape import subset_store

    wanted = [c.strip() for c in classes.split(",") if c.strip()]
    n = subset_store(store, output, split=split, classes=wanted, max_per_class=max_per_class,
                     split_ratio=split_ratio, seed=seed, overwrite=overwrite)
    click.echo(f"{output}: {n} samples")


@main.command()
@click.argument("stores", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True)
def merge(stores, output, overwrite) -> None:
    """Concatenate stores of the same layout and classes (sample ids must stay unique).

    \b
    Example:
      skeltools merge part1.zarr part2.zarr -o all.zarr
    """
    from skeltools.reshape import merge_stores

    click.echo(f"{output}: {merge_stores(stores, output, overwrite=overwrite)} samples")


@main.command()
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("sample")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="clip.gif (every frame) or strip.png (evenly spaced frames).")
@click.option("--azimuth", type=float, default=0.0, show_default=True, help="3D view: degrees about the vertical.")
@click.option("--elevation", type=float, default=0.0, show_default=True, help="3D view: degrees of tilt.")
def show(store, sample, output, azimuth, elevation) -> None:
    """Draw one sample (position or sample id) with its layout's bones, one colour per person.

    \b
    Example:
      skeltools show ntu60.zarr S001C001P001R001A011 -o clip.gif --azimuth 30
    """
    from skeltools.viz import render_sample

    click.echo(f"{render_sample(store, sample, output, azimuth=azimuth, elevation=elevation)}")


@main.command()
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
def stats(store, output) -> None:
    """Plot class counts per split part, sequence lengths and persons per sample.

    \b
    Example:
      skeltools stats ntu60.zarr -o stats.png
    """
    from skeltools.viz import plot_stats

    click.echo(f"{plot_stats(store, output)}")


#: The demo's recipe override, to fit 3 minutes on a 2-core CPU (the reference feeds 300 frames for 120 epochs):
#: 8 epochs of 8-frame uniform clips, batch 8, LR 0.02 after a one-epoch warm-up, one test clip. Measured
#: alternatives are in the README ("The demo"): without the warm-up the first epoch's loss blew up; 16-frame clips
#: cost twice as much per epoch for no faster learning; batch 4 learned worse.
DEMO_RECIPE = dict(epochs=8, batch_size=8, lr=0.02, warmup_epochs=1, clip_len=8, sampling="uniform",
                   schedule="cosine", milestones="", test_clips=1, clip_fusion="prob")
#: Share of X-Sub train held out for validation: 40 of the 200 samples (4 per class) instead of the default 5 %.
DEMO_VAL_FRACTION = 0.2


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"), show_default=True,
              help="Folder for the raw files, the store and the runs.")
@click.option("--arch", type=click.Choice(["ctrgcn", "ctrgcn_pyskl", "dualhead", "dgstgcn", "msg3d", "stgcn",
                                         "stgcnpp"]), default="dualhead", show_default=True)
@click.option("--samples", type=int, default=400, show_default=True, help="Synthetic .skeleton files.")
@click.option("--classes", type=int, default=10, show_default=True, help="Synthetic action classes (1-10).")
@click.option("--epochs", type=int, default=DEMO_RECIPE["epochs"], show_default=True)
@click.option("--clip-len", type=int, default=DEMO_RECIPE["clip_len"], show_default=True)
@click.option("--batch-size", type=int, default=DEMO_RECIPE["batch_size"], show_default=True)
@click.option("--workers", type=int, default=None, help="Conversion worker processes (default: all cores).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or training logs, only the steps and the table.")
def demo(out, arch, samples, classes, epochs, clip_len, batch_size, workers, quiet) -> None:
    """The main job end to end on a synthetic NTU corpus: synth -> convert -> modalities -> train on joints and on
    bones -> test -> ensemble the two streams -> results table. About 3 minutes on a 2-core CPU, where the two
    streams train side by side (one process each).

    \b
    Example:
      skeltools demo --out demo/
      skeltools demo --arch dgstgcn --epochs 20
    """
    from skeltools.convert import convert_ntu
    from skeltools.inspect import describe_store
    from skeltools.modalities import write_modalities
    from skeltools.synth import write_ntu_corpus
    from trainer.ensemble import ensemble
    from trainer.evaluate import read_scores
    from trainer.recipes import resolve_recipe
    from trainer.runtime import flush_denormals
    from trainer.streams import StreamJob, run_parallel, train_and_test
    from trainer.train import RunConfig

    flush_denormals()
    raw, store = out / "raw", out / "ntu.zarr"
    t_start = time.perf_counter()
    log = (lambda m: None) if quiet else (lambda m: click.echo(f"      {m}"))

    def step(n: int, text: str, seconds: float) -> None:
        click.echo(f"[{n}/7] {text} ({seconds:.1f} s)")

    t0 = time.perf_counter()
    paths = write_ntu_corpus(raw, samples, 0, num_classes=classes)
    step(1, f"synth: {len(paths)} NTU-format .skeleton files, {classes} classes, in {raw}", time.perf_counter() - t0)
    t0 = time.perf_counter()
    report = convert_ntu([raw], store, workers=workers, overwrite=True, progress=False)
    c = report["counts"]
    step(2, f"convert: {c['converted']} samples, {c['frames']} frames, {c['skipped']} skipped, {c['failed']} failed",
         time.perf_counter() - t0)
    click.echo(describe_store(store))
    t0 = time.perf_counter()
    write_modalities(store, ["bone"], overwrite=True, progress=False)
    step(3, "modalities: bone", time.perf_counter() - t0)
    recipe = resolve_recipe(arch, overrides=DEMO_RECIPE | {"epochs": epochs, "clip_len": clip_len,
                                                           "batch_size": batch_size})
    parallel = (os.cpu_count() or 1) >= 2
    jobs = []
    for modality, name in (("j", "joint"), ("b", "bone")):
        run_dir = out / "runs" / f"{arch}_{modality}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        jobs.append(StreamJob(name, RunConfig(arch=arch, store=str(store), out_dir=str(run_dir), modality=modality,
                                              workers=0, val_fraction=DEMO_VAL_FRACTION,
                                              progress=not quiet and not parallel), recipe))
    if parallel:
        click.echo(f"      the joint and bone streams train and test side by side: 2 processes, "
                   f"{max(1, (os.cpu_count() or 1) // 2)} thread(s) each")
        results = run_parallel(jobs, log=log)
    else:
        results = [train_and_test(job, log=log) for job in jobs]
    for n, (job, r) in enumerate(zip(jobs, results), 4):
        step(n, f"train {arch} on {job.name}s: best validation top-1 {r.summary['best_val_top1']:.1%} "
                f"({r.summary['validation']})", r.train_seconds)
    step(6, "test: " + ", ".join(f"{arch}_{job.config.modality} top-1 {r.test['top1']:.1%} ({r.test['num_samples']} "
                                 f"samples, {r.test['clips']} clip(s))" for job, r in zip(jobs, results)),
         max(r.test_seconds for r in results) if parallel else sum(r.test_seconds for r in results))
    runs = [Path(job.config.out_dir) for job in jobs]
    t0 = time.perf_counter()
    result = ensemble([read_scores(r / "scores.parquet") for r in runs], "equal",
                      names=["joint", "bone"])
    step(7, "ensemble (1:1 on probabilities)", time.perf_counter() - t0)
    click.echo(result.table())
    click.echo(f"done in {time.perf_counter() - t_start:.0f} s; runs in {out / 'runs'}")


@main.command()
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--feats", default="b,jm,bm", show_default=True,
              help="Modalities to write, comma-separated: b (bone), jm (joint motion), bm (bone motion).")
@click.option("--overwrite", is_flag=True, help="Recompute modalities the store already has.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def modalities(store, feats, overwrite, workers, quiet) -> None:
    """Derive bone, joint-motion and bone-motion arrays from the joints and add them to a store.

    Safe to interrupt and to rerun: new arrays are swapped in only when complete; existing ones are kept
    unless --overwrite. 2D stores with confidence: the score channel is the mean of the two values (pyskl).

    \b
    Example:
      skeltools modalities ntu60.zarr --feats b,jm,bm
    """
    from skeltools.modalities import write_modalities

    summary = write_modalities(store, feats.split(","), overwrite=overwrite, workers=workers, progress=not quiet,
                               log=(lambda m: None) if quiet else (lambda m: click.echo(m, err=True)))
    kept = f"; kept {', '.join(summary['kept'])} (use --overwrite to recompute)" if summary["kept"] else ""
    wrote = ", ".join(summary["written"]) or "nothing"
    click.echo(f"{store}: wrote {wrote} ({summary['frames']} frames, {summary['seconds']:.1f} s){kept}")


@main.command()
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["pyskl", "npy"]), required=True,
              help="pyskl: one annotation .pkl; npy: MS-G3D-style (N, C, T, V, M) arrays + label pickles.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="The .pkl file (pyskl) or folder (npy) to create.")
@click.option("--feats", default="j", show_default=True,
              help="npy: modalities to write, comma-separated (j, b, jm, bm); one file each.")
@click.option("--frames", type=int, default=None, help="npy: frames per sample (default: 300, or the longest).")
@click.option("--pad", type=click.Choice(["zero", "loop"]), default="zero", show_default=True,
              help="npy: how shorter samples are padded.")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUTPUT.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def export(store, fmt, output, feats, frames, pad, overwrite, quiet) -> None:
    """Export a store for pyskl / mmaction2 (annotation pickle) or MS-G3D / 2s-AGCN / DualHead (.npy).

    \b
    Example:
      skeltools export ntu60.zarr --format pyskl -o ntu60_3danno.pkl
      skeltools export ntu60.zarr --format npy --feats j,b -o ntu60_npy/
    """
    from skeltools.export import export_store

    export_store(store, fmt, output, features=feats, frames=frames, pad=pad, overwrite=overwrite,
                 progress=not quiet, log=lambda m: click.echo(m))


def _recipe_overrides(values: dict, sets: tuple[str, ...]) -> dict:
    """CLI options and ``--set key=value`` pairs as recipe overrides (None: keep the recipe's value)."""
    overrides = {k: v for k, v in values.items() if v is not None}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected key=value", param_hint="--set")
        overrides[key.strip().replace("-", "_")] = value.strip()
    return overrides


@main.command()
@click.option("--arch", required=True, type=click.Choice(["ctrgcn", "ctrgcn_pyskl", "dualhead", "dgstgcn", "msg3d",
                                                         "stgcn", "stgcnpp"]))
@click.option("--store", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", "protocol", default="xsub", show_default=True,
              help="Protocol: uses its {split}_train part (and {split}_val if the store has one).")
@click.option("--modality", default="j", show_default=True, help="j, b, jm, bm, or a concatenation like j+b.")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
@click.option("--epochs", type=int, default=None, help="Recipe override.")
@click.option("--batch-size", type=int, default=None, help="Global batch size; the LR scales linearly with it.")
@click.option("--lr", type=float, default=None, help="Explicit learning rate (no batch-size scaling).")
@click.option("--clip-len", type=int, default=None, help="Frames per clip.")
@click.option("--seed", type=int, default=None)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Any other recipe field, e.g. rotation=0.1.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--amp", type=click.Choice(["auto", "bf16", "fp16", "off"]), default="auto", show_default=True,
              help="Mixed precision on CUDA (CPU always trains in fp32).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model.")
@click.option("--workers", type=int, default=2, show_default=True, help="DataLoader worker processes.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--val-fraction", type=float, default=0.05, show_default=True,
              help="Share of the train part held out for validation when the store has no {split}_val part.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary, only the result.")
@click.option("--recipe", "recipe_mode", type=click.Choice(["repo", "paper"]), default="repo", show_default=True,
              help="The reference repository's configuration, or the values the paper states where they differ.")
@click.option("--init-from", type=click.Path(exists=True, path_type=Path), default=None,
              help="Fine-tune: start from a run directory's best.pt or a checkpoint (ours, or a pyskl / MS-G3D / "
                   "DualHead state dict); tensors of matching name and shape are loaded (run.json lists them).")
@click.option("--freeze-backbone", is_flag=True,
              help="With --init-from: loaded and mapped parameters get no gradient (the classifier and the "
                   "re-initialised tensors train).")
def train(arch, store, protocol, modality, out, epochs, batch_size, lr, clip_len, seed, sets, device, amp, compile_,
          workers, resume, val_fraction, quiet, recipe_mode, init_from, freeze_backbone) -> None:
    """Train a model on a store with its reference recipe (every field overridable).

    Starts with a summary (data, model, device, batch and learning rate, recipe), then a bar per epoch on a
    terminal and one line per epoch. A training part smaller than the recipe's batch trains with one batch of all
    its samples (the learning rate scaled with it, unless --lr is given). Launch with torchrun for DDP (gloo on
    CPU, NCCL on GPUs).

    \b
    Example:
      skeltools train --arch dgstgcn --store ntu60.zarr --split xsub --modality j -o runs/dgstgcn_j
      torchrun --nproc-per-node 4 -m skeltools.cli train --arch dualhead --store ntu60.zarr -o runs/dh_j
      skeltools train --arch dgstgcn --store smarthome_cv.zarr --split cv1 -o runs/cv1_j \\
          --init-from runs/ntu120_xset_j --set backbone_lr_mult=0.1
    """
    from skeltools.store import SkeletonStore
    from trainer.recipes import reference_model_kwargs, resolve_recipe
    from trainer.train import RunConfig, train as run_training

    if freeze_backbone and init_from is None:
        raise click.UsageError("--freeze-backbone needs --init-from")
    st = SkeletonStore.open(store)
    overrides = _recipe_overrides({"epochs": epochs, "batch_size": batch_size, "lr": lr, "clip_len": clip_len,
                                   "seed": seed}, sets)
    recipe = resolve_recipe(arch, dataset=st.attrs["dataset"], split=f"{protocol}_train", overrides=overrides,
                            mode=recipe_mode)
    cfg = RunConfig(arch=arch, store=str(store), out_dir=str(out), protocol=protocol, modality=modality,
                    device=device, amp=amp, compile=compile_, workers=workers, resume=resume, progress=not quiet,
                    val_fraction=val_fraction, model_kwargs=reference_model_kwargs(arch, st.attrs["dataset"]),
                    init_from=str(init_from) if init_from else None, freeze_backbone=freeze_backbone)
    summary = run_training(cfg, recipe, log=(lambda m: None) if quiet else click.echo)
    if int(os.environ.get("RANK", "0")) == 0:
        click.echo(f"{out}: best validation top-1 {summary['best_val_top1']:.2%}, mean per-class "
                   f"{summary['best_val_mean_class']:.2%} (epoch {summary['best_epoch']}, by {summary['best_metric']}; "
                   f"{summary['validation']})")


@main.command("recipes")
@click.option("--arch", default=None, help="Only this architecture's cells (dgstgcn, dualhead, msg3d, ...).")
@click.option("--dataset", default=None, help="Only cells of this dataset (a prefix: ntu, ntu120, babel, ...).")
@click.option("--recipe", "recipe_mode", type=click.Choice(["repo", "paper"]), default="repo", show_default=True)
def recipes_cmd(arch, dataset, recipe_mode) -> None:
    """The papers' table cells: streams and fusion, key recipe settings, the paper's numbers, the sources.

    \b
    Example:
      skeltools recipes --arch dgstgcn --dataset smarthome
      skeltools recipes --arch dualhead --recipe paper
    """
    from trainer.recipes import recipes_table, select_cells

    cells = select_cells(arch, dataset)
    if not cells:
        raise click.ClickException(f"no cell matches --arch {arch} --dataset {dataset}")
    click.echo(recipes_table(cells, recipe_mode))


@main.command("reproduce")
@click.argument("arch")
@click.argument("target", metavar="DATASET/SPLIT")
@click.option("--store", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The cell's dataset (e.g. ntu60.zarr for ntu60/xsub; coco17 HRNet poses for the -hrnet cells).")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the stream runs and results.md / results.json (rerun the same command to resume).")
@click.option("--recipe", "recipe_mode", type=click.Choice(["repo", "paper"]), default="repo", show_default=True)
@click.option("--epochs", type=int, default=None, help="Override for every stream (results then say so).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Recipe override for every stream.")
@click.option("--pretrain-store", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Pre-trained cells: the store each stream is pre-trained on first (e.g. ntu120.zarr).")
@click.option("--pretrained", multiple=True, metavar="STREAM=RUN_DIR|CHECKPOINT",
              help="Pre-trained cells: start this stream from a finished run or checkpoint instead.")
@click.option("--devices", default=None, help="Run streams in parallel, one per device: CUDA indices (0,1,2,3) or cpu.")
@click.option("--device", default="auto", show_default=True, help="Device of sequential runs: auto, cpu, cuda[:N].")
@click.option("--workers", type=int, default=2, show_default=True, help="DataLoader worker processes per stream.")
def reproduce_cmd(arch, target, store, out, recipe_mode, epochs, sets, pretrain_store, pretrained, devices, device,
                  workers) -> None:
    """Reproduce a paper's cell: train each stream with the cell's recipe, test, fuse as the paper does, and write
    OUT/results.md and results.json beside the paper's numbers. `skeltools recipes` lists the cells.

    \b
    Example:
      skeltools reproduce dgstgcn ntu60/xsub --store ntu60.zarr -o repro/dg_ntu60_xsub --devices 0,1,2,3
      skeltools reproduce dgstgcn smarthome_cv/cv1-pretrained --store smarthome_cv.zarr \\
          --pretrain-store ntu120.zarr -o repro/dg_cv1
    """
    from trainer.recipes import find_cell
    from trainer.reproduce import reproduce

    given = {}
    for item in pretrained:
        stream, sep, path = item.partition("=")
        if not sep or not Path(path).exists():
            raise click.BadParameter(f"{item!r}: expected STREAM=PATH of an existing run or checkpoint",
                                     param_hint="--pretrained")
        given[stream.strip()] = path
    results = reproduce(find_cell(arch, target), store, out, mode=recipe_mode,
                        overrides=_recipe_overrides({"epochs": epochs}, sets), pretrain_store=pretrain_store,
                        pretrained=given, device=device,
                        devices=[d.strip() for d in devices.split(",") if d.strip()] if devices else None,
                        workers=workers, log=click.echo)
    click.echo((out / "results.md").read_text())
    if not results["comparable"]:
        click.echo("note: this run deviates from the recipe; its numbers are not comparable with the paper's", err=True)


@main.command("test")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--store", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Store to test on (default: the one the run trained on).")
@click.option("--clips", type=int, default=None, help="Clips per sample (default: the recipe's, 10 for DG-STGCN).")
@click.option("--device", default="auto", show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--workers", type=int, default=0, show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary, only the result.")
def test_cmd(run_dir, store, clips, device, batch_size, workers, quiet) -> None:
    """Test a run's best checkpoint: top-1/top-5/mean-class accuracy, confusion matrix, scores.parquet.

    \b
    Example:
      skeltools test runs/dgstgcn_j --clips 10
    """
    from trainer.testing import test_run

    r = test_run(run_dir, store=str(store) if store else None, clips=clips, device=device, batch_size=batch_size,
                 workers=workers, progress=not quiet, log=(lambda m: None) if quiet else click.echo)
    click.echo(f"{run_dir}: top-1 {r['top1']:.2%}  top-5 {r['top5']:.2%}  mean-class {r['mean_class']:.2%}  "
               f"({r['num_samples']} samples, {r['clips']} clip(s))")
    if r["worst_confusions"]:
        click.echo("most confused: " + "; ".join(r["worst_confusions"][:3]))


@main.command("predict")
@click.argument("args", nargs=-1, required=True, metavar="[RUN_DIR] INPUT...")
@click.option("--top-k", type=int, default=5, show_default=True, help="Classes listed per sample or window.")
@click.option("--window", type=int, default=None, help="Slide windows of this many frames over each sequence.")
@click.option("--stride", type=int, default=None, help="Frames between window starts (default: window / 2).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV of the top-k classes (sample, start, end, rank, class_index, class, prob); with --window "
                   "also a timeline PNG next to it (viz extra).")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--split", default=None, help="Store input: only this split column (default: every sample).")
@click.option("--clips", type=int, default=None, help="Clips per sample (default: the recipe's test clips).")
@click.option("--arch", type=click.Choice(["ctrgcn", "ctrgcn_pyskl", "dualhead", "dgstgcn", "msg3d", "stgcn",
                                         "stgcnpp"]), default=None,
              help="With --weights: a reference checkpoint instead of a run directory.")
@click.option("--weights", type=click.Path(path_type=Path), default=None,
              help="Reference checkpoint (pyskl, MS-G3D, DualHead-Net or CTR-GCN state dict) for --arch.")
@click.option("--store", "ref_store", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="With --weights: a store converted like the checkpoint's training data (classes, layout, "
                   "preprocessing).")
@click.option("--dataset", type=click.Choice(["ntu60", "ntu120", "kinetics400"]), default=None,
              help="With --weights: its classes, and the converter's default preprocessing for it.")
@click.option("--modality", default="j", show_default=True, help="With --weights: j, b, jm, bm or e.g. j+b.")
@click.option("--device", default="auto", show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary, only the result.")
def predict_cmd(args, top_k, window, stride, output, checkpoint, split, clips, arch, weights, ref_store, dataset,
                modality, device, batch_size, quiet) -> None:
    """Predict action classes of raw skeleton files or a store with a trained run, preprocessed exactly as the
    run's training data was (the run directory records how).

    INPUT: NTU .skeleton files, OpenPose per-frame JSON folders or Kinetics-Skeleton JSON files (in the format
    the run's store was converted from; folders are searched), or one store. Clip sampling is the recipe's test
    sampling, seeded by each sample's position (raw files: in the converter's order), so a store gives the
    probabilities `skeltools test` writes and raw files the same as their converted store.

    \b
    Example:
      skeltools predict runs/dgstgcn_j raw/S001C001P001R001A043.skeleton --top-k 3
      skeltools predict runs/dgstgcn_j long_video.skeleton --window 64 --stride 16 -o timeline.csv
      skeltools predict runs/dgstgcn_j ntu60.zarr --split xsub_test -o predictions.csv
      skeltools predict --arch stgcn --weights stgcn_ntu60_xsub_j.pth --dataset ntu60 raw/
    """
    from skeltools.ingest import is_store, read_raw
    from skeltools.store import SkeletonStore
    from trainer.predict import (format_lines, load_predictor, plot_timeline, predict_store, reference_predictor,
                                 store_attrs, write_csv)

    if (arch is None) != (weights is None):
        raise click.UsageError("--arch and --weights go together")
    if arch is None:
        if ref_store or dataset or modality != "j":
            raise click.UsageError("--store, --dataset and --modality describe a reference checkpoint (--weights); "
                                   "a run directory records them")
        run_dir, *inputs = args
        if not Path(run_dir).is_dir():
            raise click.UsageError(f"{run_dir}: not a run directory")
        predictor = load_predictor(run_dir, checkpoint=checkpoint, device=device)
    else:
        if (ref_store is None) == (dataset is None):
            raise click.UsageError("a reference checkpoint needs its classes: give --store or --dataset")
        from skeltools.ingest import default_attrs

        inputs = list(args)
        attrs = store_attrs(ref_store) if ref_store else default_attrs(dataset)
        predictor = reference_predictor(arch, weights, attrs, modality=modality, device=device)
    if not inputs:
        raise click.UsageError("no INPUT given")
    if stride is not None and window is None:
        raise click.UsageError("--stride needs --window")
    stores = [i for i in inputs if is_store(i)]
    if stores:
        if len(inputs) > 1:
            raise click.UsageError("give one store, or raw files, not both")
        store = SkeletonStore.open(stores[0])
        rows = store.rows(split)
    else:
        if split:
            raise click.UsageError("--split selects samples of a store input")
        raw = read_raw(inputs, predictor.attrs, progress=not quiet)
        for problem in raw.problems:
            click.echo(f"warning: {problem}; skipped", err=True)
        store = SkeletonStore.from_samples(raw.samples, raw.sample_ids, predictor.attrs)
        rows = None
    result = predict_store(predictor, store, rows, clips=clips, window=window, stride=stride, batch_size=batch_size,
                           progress=not quiet, log=(lambda m: None) if quiet else (lambda m: click.echo(m, err=True)))
    names = predictor.class_names
    for line in format_lines(result, names, top_k):
        click.echo(line)
    if output:
        write_csv(result, names, output, top_k)
        click.echo(f"wrote {output} ({len(result.sample_ids)} {'windows' if window else 'samples'})", err=True)
        if window:
            png = output.with_suffix(".png")
            if plot_timeline(result, names, png):
                click.echo(f"wrote {png}", err=True)
            else:
                click.echo("note: matplotlib is not installed (pip install 'skeltools[viz]'); no timeline PNG",
                           err=True)


@main.command("export-model")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--onnx", "onnx_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The .onnx file to write.")
@click.option("--frames", type=int, default=None, help="Fixed clip length T (default: the recipe's clip length).")
@click.option("--dynamic", is_flag=True, help="Any clip length T (the batch size is always free).")
@click.option("--opset", type=int, default=18, show_default=True, help="ONNX opset (18 or newer).")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
def export_model_cmd(run_dir, onnx_path, frames, dynamic, opset, checkpoint, overwrite) -> None:
    """Export a run's model to ONNX: input clips (N, M, T, V, C), outputs logits and probs (N, K); class names,
    layout, modality, clip sampling and preprocessing in the model's metadata. Needs the onnx extra.

    \b
    Example:
      skeltools export-model runs/dgstgcn_j --onnx dgstgcn_j.onnx --dynamic
      skeltools export-model runs/stgcn_j --onnx stgcn_j.onnx --frames 100
    """
    from trainer.onnx_export import export_onnx
    from trainer.predict import load_predictor

    if onnx_path.exists() and not overwrite:
        raise click.ClickException(f"{onnx_path} exists; pass --overwrite to replace it")
    summary = export_onnx(load_predictor(run_dir, checkpoint=checkpoint, device="cpu"), onnx_path, frames=frames,
                          dynamic=dynamic, opset=opset, overwrite=overwrite)
    click.echo(f"{onnx_path}: {summary['metadata']['architecture']}, {summary['classes']} classes, frames "
               f"{summary['frames']}, opset {summary['opset']}, {summary['bytes'] / 1e6:.1f} MB")


@main.command("ensemble")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--weights", default="equal", show_default=True,
              help="equal, 2:2:1:1 (pyskl J:B:JM:BM), ctrgcn (0.6,0.6,0.4,0.4), or numbers like 2,1.")
@click.option("--search", is_flag=True,
              help="Fit the weights on the runs' validation scores instead (at least 100 samples and 5 per class; "
                   "below that, equal weights with a warning).")
@click.option("--on", type=click.Choice(["probs", "logits"]), default="probs", show_default=True,
              help="Fuse probabilities (pyskl) or logits (MS-G3D, CTR-GCN).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the fused scores here (parquet).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary, only the result.")
def ensemble_cmd(run_dirs, weights, search, on, output, quiet) -> None:
    """Fuse the test scores of several runs (streams) by sample id and report per-stream and fused accuracy.

    \b
    Example:
      skeltools ensemble runs/j runs/b runs/jm runs/bm --weights 2:2:1:1
      skeltools ensemble runs/j runs/b --search
    """
    from trainer.ensemble import ensemble, search_too_small, search_weights
    from trainer.evaluate import read_scores

    def scores(path: Path, name: str):
        file = path / name if path.is_dir() else path
        if not file.exists():
            raise click.ClickException(f"{file} not found; run `skeltools test {path}` first")
        return read_scores(file)

    if search:
        val = [scores(d, "val_scores.parquet") for d in run_dirs]
        too_small = search_too_small(val[0].labels)
        if too_small:
            click.echo(f"warning: {too_small}: a weight search would fit noise; using equal weights", err=True)
            weights = "equal"
        else:
            fit = search_weights(val, on=on, progress=not quiet)
            click.echo(f"weights fitted on {fit.samples} validation samples: "
                       f"{', '.join(f'{w:.2f}' for w in fit.weights)} (validation top-1 {fit.score:.2%}, "
                       f"{fit.candidates} weightings tried)")
            weights = list(fit.weights)
    result = ensemble([scores(d, "scores.parquet") for d in run_dirs], weights, on=on,
                      names=[d.name for d in run_dirs])
    click.echo(result.table())
    if output:
        result.scores.write(output)


if __name__ == "__main__":
    sys.exit(main())
