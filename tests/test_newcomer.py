"""What tripped a new user: stores without class names, empty selections, non-store paths, labelled stores
without a split, a missing torch, and modalities computed on the fly."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from skeltools.cli import main
from skeltools.reshape import subset_store
from skeltools.store import SkeletonStore, StoreError
from trainer.evaluate import present_classes


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def nameless_store(ntu_train_store, tmp_path):
    """A copy of the training store whose attrs hold no class names (as numeric-label OpenPose stores had)."""
    out = tmp_path / "nameless.zarr"
    subset_store(ntu_train_store, out, max_per_class=4)
    group = zarr.open_group(str(out), mode="r+")
    group.attrs["class_names"] = []
    return out


def test_class_name_falls_back_to_the_number(nameless_store):
    store = SkeletonStore.open(nameless_store)
    label = int(store.index.column("label")[0].as_py())
    assert store.class_names == [] and store.class_name(label) == f"class {label}"
    assert store.class_name(-1) == "unlabelled"


def test_show_and_stats_work_without_class_names(nameless_store, tmp_path):
    pytest.importorskip("matplotlib")
    out = invoke("show", nameless_store, "0", "-o", tmp_path / "strip.png")
    assert out.exit_code == 0, out.output
    assert (tmp_path / "strip.png").stat().st_size > 1000
    out = invoke("stats", nameless_store, "-o", tmp_path / "stats.png")
    assert out.exit_code == 0, out.output


def test_confusion_shows_only_the_classes_present():
    matrix = np.zeros((60, 60), np.int64)
    matrix[3, 3], matrix[7, 3], matrix[7, 7], matrix[42, 50] = 5, 1, 4, 2
    assert present_classes(matrix).tolist() == [3, 7, 42, 50]


def test_empty_subset_lists_the_classes_that_exist(ntu_train_store, tmp_path):
    store = SkeletonStore.open(ntu_train_store)
    present = sorted(set(store.index.column("label").to_pylist()))
    with pytest.raises(StoreError) as err:
        subset_store(ntu_train_store, tmp_path / "e.zarr", classes=["59"])
    message = str(err.value)
    assert "the selection is empty" in message
    for k in present:
        assert f"{k} {store.class_names[k]}" in message


def test_info_after_subset_names_what_made_the_store(ntu_train_store, tmp_path):
    subset_store(ntu_train_store, tmp_path / "s.zarr", max_per_class=2)
    out = invoke("info", tmp_path / "s.zarr")
    assert out.exit_code == 0, out.output
    assert "None" not in out.output
    assert "created by  subset: 6 converted (report.json)" in out.output


def test_validate_on_a_folder_that_is_no_store(tmp_path):
    (tmp_path / "raw").mkdir()
    out = invoke("validate", tmp_path / "raw")
    assert out.exit_code == 1
    assert "not a skeltools store: no zarr.json" in out.output and "GroupNotFoundError" not in out.output


def test_subset_adds_a_seeded_stratified_split(ntu_train_store, tmp_path):
    labels = SkeletonStore.open(ntu_train_store).index.column("label").to_numpy()
    out = invoke("subset", ntu_train_store, "-o", tmp_path / "a.zarr", "--split-ratio", "0.8", "--seed", "3")
    assert out.exit_code == 0, out.output
    store = SkeletonStore.open(tmp_path / "a.zarr")
    train, test = store.rows("generic_train"), store.rows("generic_test")
    assert len(train) + len(test) == len(store) == len(labels)
    assert not set(train) & set(test)
    for k in np.unique(labels):  # 80 % of every class on the train side
        n = int((labels == k).sum())
        assert int((labels[train] == k).sum()) == round(0.8 * n)
    subset_store(ntu_train_store, tmp_path / "b.zarr", split_ratio=0.8, seed=3)
    again = SkeletonStore.open(tmp_path / "b.zarr")
    assert again.rows("generic_train").tolist() == train.tolist()
    with pytest.raises(StoreError, match="has a 'generic' split already"):
        subset_store(tmp_path / "a.zarr", tmp_path / "c.zarr", split_ratio=0.5)


def test_a_labelled_store_without_split_names_the_fix(ntu_train_store, tmp_path):
    import pyarrow as pa

    out = tmp_path / "nosplit.zarr"
    subset_store(ntu_train_store, out, max_per_class=3)
    store = SkeletonStore.open(out)
    index = store.index.select(["sample_id", "label", "length", "n_persons"])
    import pyarrow.parquet as pq

    pq.write_table(index, out / "index.parquet")
    with pytest.raises(StoreError) as err:
        SkeletonStore.open(out).rows("xsub_train")
    assert "--split-ratio 0.8" in str(err.value) and "no split 'xsub_train'" in str(err.value)
    assert isinstance(index, pa.Table)


def test_trainer_commands_without_torch_say_how_to_install_it(ntu_train_store, tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "from skeltools.cli import main\n"
            f"main(['train', '--arch', 'stgcn', '--store', {str(ntu_train_store)!r}, '-o', {str(tmp_path / 'r')!r}])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "train needs torch, which is not installed" in done.stderr
    assert "--index-url https://download.pytorch.org/whl/cpu" in done.stderr
    assert "Traceback" not in done.stderr


def test_training_says_when_a_modality_is_computed_on_the_fly(ntu_train_store, tmp_path):
    from trainer.recipes import resolve_recipe
    from trainer.train import RunConfig, train

    lines = []
    small = tmp_path / "j_only.zarr"
    subset_store(ntu_train_store, small, max_per_class=6)
    # the copy keeps every modality; drop the stored bone array to make the store joints-only
    import shutil

    shutil.rmtree(small / "bone")
    assert "bone" not in SkeletonStore.open(small).modalities
    train(RunConfig(arch="stgcn", store=str(small), out_dir=str(tmp_path / "r"), modality="b", workers=0),
          resolve_recipe("stgcn", overrides=dict(epochs=1, batch_size=4, lr=0.05, clip_len=8, test_clips=1)),
          log=lines.append)
    notes = [line for line in lines if line.startswith("note: bone not in")]
    assert len(notes) == 1 and "skeltools modalities" in notes[0]
    assert json.loads((tmp_path / "r" / "run.json").read_text())["modality"] == "b"


def test_openpose_label_file_beside_the_inputs_is_named_and_split_ratio_adds_a_split(tmp_path):
    from skeltools.synth import write_openpose_corpus

    write_openpose_corpus(tmp_path / "json", 8, seed=1, format="frames", model="body25", frames=24)
    labels = tmp_path / "json" / "labels.csv"
    assert labels.is_file()
    result = CliRunner().invoke(main, ["convert", "openpose", str(tmp_path / "json"), "-o", str(tmp_path / "a.zarr"),
                                       "--format", "frames", "--model", "body25", "--normalize", "none",
                                       "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"warning: {labels} looks like a label file but is not used: pass it with --labels" in result.output
    assert (SkeletonStore.open(tmp_path / "a.zarr").index.column("label").to_numpy() == -1).all()
    result = CliRunner().invoke(main, ["convert", "openpose", str(tmp_path / "json"), "-o", str(tmp_path / "b.zarr"),
                                       "--format", "frames", "--model", "body25", "--normalize", "none",
                                       "--labels", str(labels), "--workers", "1"])
    assert result.exit_code == 0 and "is labelled but has no split: rerun with --split-ratio" in result.output
    result = CliRunner().invoke(main, ["convert", "openpose", str(tmp_path / "json"), "-o", str(tmp_path / "c.zarr"),
                                       "--format", "frames", "--model", "body25", "--normalize", "none",
                                       "--labels", str(labels), "--split-ratio", "0.5", "--seed", "2",
                                       "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "looks like a label file" not in result.output and "has no split" not in result.output
    store = SkeletonStore.open(tmp_path / "c.zarr")
    train, test = store.rows("generic_train"), store.rows("generic_test")
    assert len(train) + len(test) == len(store) == 8 and not set(train) & set(test)
    labels_ = store.index.column("label").to_numpy()
    for k in np.unique(labels_):  # half of every class with two or more videos on each side
        n = int((labels_ == k).sum())
        if n >= 2:
            assert int((labels_[train] == k).sum()) == round(0.5 * n)
