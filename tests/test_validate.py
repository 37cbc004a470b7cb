"""`skeltools validate`: a valid store passes; each kind of corruption gives its own named error."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zarr
from click.testing import CliRunner

from skeltools.cli import main
from skeltools.validate import validate_store
from test_store import build_store


@pytest.fixture
def store(tmp_path):
    build_store(tmp_path / "s.zarr", [40, 90, 7, 130], shard=64, chunk=16)
    return tmp_path / "s.zarr"


def shard_file(store, name="joint", shard=0):
    return store / name / "c" / str(shard) / "0" / "0" / "0"


def test_valid_store(store):
    report = validate_store(store)
    assert report.ok, report.text()
    assert any("checksum" in c for c in report.checked) and any("offsets" in c for c in report.checked)
    result = CliRunner().invoke(main, ["validate", str(store)])
    assert result.exit_code == 0 and "valid" in result.output


def test_flipped_byte_is_named_by_array_and_chunk(store):
    path = shard_file(store, shard=1)
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF
    path.write_bytes(bytes(data))
    report = validate_store(store)
    assert not report.ok
    assert any("array 'joint', shard 1, chunk 4 (frames 64:80)" in p for p in report.problems), report.problems
    result = CliRunner().invoke(main, ["validate", str(store)])
    assert result.exit_code == 1 and "FAIL" in result.output


def test_truncated_shard(store):
    path = shard_file(store, shard=2)
    path.write_bytes(path.read_bytes()[:-100])
    problems = validate_store(store).problems
    assert any(p.startswith("array 'joint', shard 2") for p in problems), problems


def test_missing_index(store):
    (store / "index.parquet").unlink()
    assert "index.parquet is missing" in validate_store(store).problems


def test_tampered_offsets(store):
    offsets = zarr.open_array(str(store / "offsets"), mode="r+")
    offsets[2] = 10  # 0, 40, 10, 137, 267: decreasing
    problems = validate_store(store).problems
    assert any("offsets: decrease at sample 1 (40 -> 10)" in p for p in problems), problems
    offsets[:] = np.array([0, 40, 130, 137, 260])
    problems = validate_store(store).problems
    assert any("offsets: must run from 0 to 267 frames" in p for p in problems), problems


def test_nan_values(store):
    zarr.open_array(str(store / "joint"), mode="r+")[5] = np.nan
    problems = validate_store(store).problems
    assert any("array 'joint': 150 NaN or infinite values" in p for p in problems), problems


def test_bad_labels_overlapping_splits_duplicate_ids(store):
    index = pq.read_table(store / "index.parquet")
    columns = {name: index.column(name).to_pylist() for name in index.column_names}
    columns["label"][2] = 7  # 3 classes
    columns["xsub_train"][1] = True  # sample 1 is also in xsub_test
    columns["sample_id"][3] = columns["sample_id"][0]
    pq.write_table(pa.Table.from_pydict(columns, schema=index.schema), store / "index.parquet")
    problems = validate_store(store).problems
    assert any("1 labels outside -1..2 (first: row 2, label 7)" in p for p in problems), problems
    assert any("split xsub: parts xsub_train, xsub_test overlap in 1 samples" in p for p in problems), problems
    assert any("sample_id values are not unique (e.g. 's0')" in p for p in problems), problems
