"""`convert ntu` end to end: round trip, genuine files, bad input, strictness, atomic publish, resume, workers."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import skeltools.convert as convert_mod
from skeltools.cli import main
from skeltools.convert import ConversionError, convert_ntu
from skeltools.store import SkeletonStore, work_dir_for
from skeltools.synth import write_ntu_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small synthetic corpus (CRLF, noise bodies, empty frames, two-person classes)."""
    out = tmp_path_factory.mktemp("raw")
    write_ntu_corpus(out, 24, seed=3)
    return out


def first_two_slots(path) -> np.ndarray:
    """Independent Python reading of a file: the first two bodies of each frame, float32, zeros where absent."""
    lines = [line.split() for line in open(path).read().splitlines() if line.strip()]
    frames, i = [], 1
    for _ in range(int(lines[0][0])):
        n = int(lines[i][0]); i += 1
        frame = np.zeros((2, 25, 3), np.float32)
        for b in range(n):
            i += 2
            if b < 2:
                frame[b] = np.array([[float(t) for t in lines[i + j][:3]] for j in range(25)], np.float32)
            i += 25
        frames.append(frame)
    return np.stack(frames)


def test_round_trip_preset_none_is_bit_exact(corpus, tmp_path):
    report = convert_ntu([corpus], tmp_path / "s.zarr", preset="none", exclude_list=(), workers=1, progress=False)
    store = SkeletonStore.open(tmp_path / "s.zarr")
    files = sorted(corpus.glob("*.skeleton"))
    assert len(store) == len(files) == report["counts"]["converted"]
    assert report["counts"]["input_bytes"] == sum(p.stat().st_size for p in files)
    for i, path in enumerate(files):
        assert store.index.column("sample_id")[i].as_py() == path.stem
        expected = first_two_slots(path)
        assert store[i].tobytes() == expected.tobytes(), path.name
    assert store.attrs["preset"] == "none" and store.attrs["coords"] == "xyz"


def test_index_columns_and_attrs(corpus, tmp_path):
    convert_ntu([corpus], tmp_path / "s.zarr", exclude_list=(), progress=False, workers=1)
    store = SkeletonStore.open(tmp_path / "s.zarr")
    index = store.index.to_pylist()
    for row in index:
        sid = row["sample_id"]
        assert row["setup"] == int(sid[1:4]) and row["camera"] == int(sid[5:8])
        assert row["subject"] == int(sid[9:12]) and row["replication"] == int(sid[13:16])
        assert row["label"] == int(sid[17:20]) - 1 and row["action"] == int(sid[17:20])
        assert row["xview_train"] == (row["camera"] != 1) and row["xview_test"] == (row["camera"] == 1)
        assert row["xsub_train"] != row["xsub_test"]
    assert store.lengths.tolist() == [r["length"] for r in index]
    assert store.attrs["dataset"] == "ntu60" and len(store.attrs["class_names"]) == 60
    assert store.attrs["preprocessing"]["preset"] == "clean"  # the default preset
    assert pq.read_schema(tmp_path / "s.zarr" / "index.parquet").metadata[b"dataset"] == b"ntu60"
    assert {r["n_persons"] for r in index} == {1, 2}


def test_genuine_files(ntu_fixtures, tmp_path):
    report = convert_ntu([ntu_fixtures], tmp_path / "s.zarr", progress=False, workers=1)
    store = SkeletonStore.open(tmp_path / "s.zarr")
    rows = {r["sample_id"]: r for r in store.index.to_pylist()}
    assert set(rows) == {"S001C001P001R001A011", "S001C003P008R002A058"}
    assert rows["S001C001P001R001A011"]["length"] == 82 and rows["S001C001P001R001A011"]["n_persons"] == 1
    assert rows["S001C003P008R002A058"]["length"] == 70 and rows["S001C003P008R002A058"]["n_persons"] == 2
    handshake = store[1]
    assert np.abs(handshake[:, 1]).sum(axis=(1, 2)).min() > 0  # the second actor is present in every frame
    assert report["skipped"] == [{"file": str(ntu_fixtures / "S001C002P006R001A008.skeleton"),
                                  "sample_id": "S001C002P006R001A008", "reason": "on the exclusion list"}]
    # without the exclusion list the all-empty file is still skipped, with its own reason
    report = convert_ntu([ntu_fixtures], tmp_path / "t.zarr", exclude_list=(), progress=False, workers=1)
    (entry,) = report["skipped"]
    assert entry["sample_id"] == "S001C002P006R001A008" and "empty" in entry["reason"]


def test_preset_none_on_genuine_two_body_file(ntu_fixtures, tmp_path):
    convert_ntu([ntu_fixtures / "S001C003P008R002A058.skeleton"], tmp_path / "s.zarr", preset="none",
                progress=False, workers=1)
    sample = SkeletonStore.open(tmp_path / "s.zarr")[0]
    np.testing.assert_array_equal(sample[0, 0, 0], np.float32([0.7201789, 0.1647426, 3.561895]))
    np.testing.assert_array_equal(sample[0, 1, 0], np.float32([-0.387201, -0.05403496, 2.961099]))
    np.testing.assert_array_equal(sample[-1, 1, -1], np.float32([0.2655148, 0.1555307, 3.263833]))


def make_bad_corpus(corpus, folder):
    """Good synthetic files plus one of every kind of bad input; returns {sample_id: expected reason part}."""
    folder.mkdir()
    good = sorted(corpus.glob("*.skeleton"))[:6]
    for path in good:
        shutil.copy(path, folder)
    text = good[0].read_bytes()
    bad = {
        "S001C001P001R001A001": (text[: len(text) // 3], "the file ends"),
        "S001C001P001R001A002": (text.replace(b" 2\r\n", b" 2x\r\n", 7), "'2x'"),
        "S001C001P001R001A003": (text.replace(b"\r\n25\r\n", b"\r\n24\r\n", 1), "25 joints"),
        "S001C001P001R001A004": (b"", "frame count"),
    }
    for name, (data, _) in bad.items():
        (folder / f"{name}.skeleton").write_bytes(data)
    os.symlink(folder / "nowhere", folder / "S001C001P001R001A005.skeleton")
    bad["S001C001P001R001A005"] = (None, "readable file")
    (folder / "notes.skeleton").write_bytes(text)
    bad["notes"] = (None, "SsssCcccPpppRrrrAaaa")
    (folder / "S001C001P001R001A006.skeleton").write_bytes(b"0\r\n")
    return {k: v[1] for k, v in bad.items()}, len(good)


def test_bad_input_is_reported_and_strict_mode_publishes_nothing(corpus, tmp_path):
    expected, n_good = make_bad_corpus(corpus, tmp_path / "raw")
    target = tmp_path / "s.zarr"
    with pytest.raises(ConversionError, match="6 of 13 files failed; no store was written"):
        convert_ntu([tmp_path / "raw"], target, exclude_list=(), progress=False, workers=1)
    assert not target.exists()
    report = convert_ntu([tmp_path / "raw"], target, exclude_list=(), keep_going=True, progress=False, workers=2)
    assert report["counts"]["converted"] == n_good and report["counts"]["failed"] == 6
    failed = {os.path.basename(f["file"]).split(".")[0]: f for f in report["failed"]}
    assert set(failed) == set(expected)
    for name, part in expected.items():
        assert part in failed[name]["error"], (name, failed[name])
        assert failed[name]["file"] in failed[name]["error"]
    assert failed["S001C001P001R001A002"]["line"] > 1 and failed["S001C001P001R001A003"]["line"] == 4
    (skipped,) = report["skipped"]
    assert skipped["sample_id"] == "S001C001P001R001A006" and "0 frames" in skipped["reason"]
    store = SkeletonStore.open(target)
    assert len(store) == n_good
    assert json.loads((target / "report.json").read_text())["counts"]["failed"] == 6


def test_cli_exit_codes_and_one_line_errors(corpus, tmp_path):
    make_bad_corpus(corpus, tmp_path / "raw")
    runner = CliRunner()
    out = tmp_path / "s.zarr"
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    args = ["convert", "ntu", str(tmp_path / "raw"), "-o", str(out), "--exclude-list", str(empty), "-q"]
    result = runner.invoke(main, args)
    assert result.exit_code == 1 and not out.exists()
    assert result.output.startswith("error: 6 of 13 files failed") and "Traceback" not in result.output
    result = runner.invoke(main, args + ["--keep-going", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "6 samples" in result.output and "6 failed" in result.output and out.exists()
    result = runner.invoke(main, args + ["--keep-going"])
    assert result.exit_code == 1 and "already exists" in result.output
    result = runner.invoke(main, ["info", str(out)])
    assert result.exit_code == 0 and "samples     6" in result.output and "xsub_train" in result.output
    assert "modalities  joint  (run `skeltools modalities" in result.output


def test_interrupted_run_leaves_no_store_and_resumes(corpus, tmp_path, monkeypatch, kill_at_group):
    monkeypatch.setattr(convert_mod, "GROUP_FILES", 5)
    target = tmp_path / "s.zarr"
    kill_at_group(3)
    with pytest.raises(KeyboardInterrupt):
        convert_ntu([corpus], target, exclude_list=(), progress=False, workers=1)
    assert not target.exists() and work_dir_for(target).exists()
    kill_at_group(None)

    def dies_writing(task):
        raise OSError("disk full")

    monkeypatch.setattr(convert_mod, "write_shard", dies_writing)
    with pytest.raises(OSError):
        convert_ntu([corpus], target, exclude_list=(), progress=False, workers=1)
    assert not target.exists()
    monkeypatch.undo()
    monkeypatch.setattr(convert_mod, "GROUP_FILES", 5)
    logs = []
    convert_ntu([corpus], target, exclude_list=(), progress=False, workers=1, log=logs.append)
    assert any("resuming: 5 of 5 groups" in m for m in logs)
    convert_ntu([corpus], tmp_path / "fresh.zarr", exclude_list=(), progress=False, workers=1)
    a, b = SkeletonStore.open(target), SkeletonStore.open(tmp_path / "fresh.zarr")
    assert a.array("joint")[:].tobytes() == b.array("joint")[:].tobytes()
    assert a.index.equals(b.index)
    assert not work_dir_for(target).exists()


def test_resume_reprocesses_a_finished_group_whose_input_changed(corpus, tmp_path, monkeypatch, kill_at_group):
    raw = tmp_path / "raw"
    shutil.copytree(corpus, raw)
    monkeypatch.setattr(convert_mod, "GROUP_FILES", 5)
    kill_at_group(3)
    with pytest.raises(KeyboardInterrupt):
        convert_ntu([raw], tmp_path / "s.zarr", exclude_list=(), progress=False, workers=1)
    kill_at_group(None)
    first = sorted(raw.glob("*.skeleton"))[0]  # in group 0, finished: edit it in place (same name, new content)
    lines = first.read_bytes().splitlines(keepends=True)
    lines[4] = b"0.5 " + lines[4].split(b" ", 1)[1]  # frame 0, body 0, joint 0: x = 0.5
    first.write_bytes(b"".join(lines))
    logs = []
    convert_ntu([raw], tmp_path / "s.zarr", exclude_list=(), progress=False, workers=1, log=logs.append)
    assert any("resuming: 1 of 5 groups" in m for m in logs)  # group 0 changed, group 2 never finished
    convert_ntu([raw], tmp_path / "fresh.zarr", exclude_list=(), progress=False, workers=1)
    a, b = SkeletonStore.open(tmp_path / "s.zarr"), SkeletonStore.open(tmp_path / "fresh.zarr")
    assert a.array("joint")[:].tobytes() == b.array("joint")[:].tobytes()


def test_worker_count_does_not_change_the_output(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(convert_mod, "GROUP_FILES", 4)
    for workers in (1, 2):
        convert_ntu([corpus], tmp_path / f"w{workers}.zarr", exclude_list=(), workers=workers,
                    shard_frames=512, chunk_frames=128, progress=False)
    a, b = SkeletonStore.open(tmp_path / "w1.zarr"), SkeletonStore.open(tmp_path / "w2.zarr")
    assert a.array("joint").shape[0] > 3 * 512  # several shards
    assert a.array("joint")[:].tobytes() == b.array("joint")[:].tobytes()
    assert (a.offsets == b.offsets).all() and a.index.equals(b.index)
    root = tmp_path / "w1.zarr" / "joint"
    shard_files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert len(shard_files) > 4
    for name in shard_files:
        assert (root / name).read_bytes() == (tmp_path / "w2.zarr" / "joint" / name).read_bytes(), name


def test_exclusion_list_and_dataset_detection(corpus, tmp_path):
    names = sorted(p.stem for p in corpus.glob("*.skeleton"))
    listing = tmp_path / "exclude.txt"
    listing.write_text("A header line\n\n" + "\n".join(n + ".skeleton" for n in names[:3]) + "\n")
    report = convert_ntu([corpus], tmp_path / "s.zarr", exclude_list=listing, progress=False, workers=1)
    assert report["counts"]["converted"] == len(names) - 3
    assert [s["sample_id"] for s in report["skipped"]] == names[:3]
    raw120 = tmp_path / "raw120"
    raw120.mkdir()
    for path in sorted(corpus.glob("*.skeleton"))[:4]:
        shutil.copy(path, raw120 / path.name.replace("S0", "S1", 1))  # setups 1xx: NTU120
    convert_ntu([raw120], tmp_path / "n120.zarr", exclude_list=(), progress=False, workers=1)
    store = SkeletonStore.open(tmp_path / "n120.zarr")
    assert store.attrs["dataset"] == "ntu120" and len(store.attrs["class_names"]) == 120
    assert {"xsub_train", "xsub_test", "xset_train", "xset_test"} == set(store.split_columns)


def test_msg3d_preset_stores_300_frames(corpus, tmp_path):
    convert_ntu([corpus], tmp_path / "s.zarr", preset="msg3d", exclude_list=(), progress=False, workers=1)
    store = SkeletonStore.open(tmp_path / "s.zarr")
    assert (store.lengths == 300).all()
    assert store.attrs["preset"] == "msg3d" and store.attrs["preprocessing"]["frames"].startswith("300")


def test_groups_are_cut_by_items_and_by_input_files(monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setattr(convert_mod, "GROUP_FILES", 3)
    monkeypatch.setattr(convert_mod, "GROUP_INPUT_FILES", 10)
    assert [len(g) for g in convert_mod.group_items([f"f{i}" for i in range(7)])] == [3, 3, 1]
    videos = [SimpleNamespace(files=("a",) * n) for n in (4, 4, 4, 12, 1)]
    assert [[len(v.files) for v in g] for g in convert_mod.group_items(videos)] == [[4, 4], [4], [12], [1]]
