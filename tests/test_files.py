"""Atomic writes (orchestration/core/files.py): all or nothing, and durable once renamed."""

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestration.core import files


def test_atomic_write_fsyncs_the_file_before_the_rename_and_the_folder_after_spied(
    tmp_path, monkeypatch
):
    # spies on os.fsync / os.replace (they still run): the order is what makes a power cut safe
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.realpath(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "out" / "table.parquet"
    files.write_parquet_atomic(pa.table({"x": [1, 2, 3]}), target)
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "replace", "fsync"], events
    assert events[0][1].endswith(".tmp") and events[1][1] == str(target)
    assert events[2][1] == str(target.parent)  # the folder, so the rename itself survives
    assert pq.read_table(target).num_rows == 3


def test_a_write_that_fails_midway_keeps_the_previous_file_and_no_temp(tmp_path):
    target = tmp_path / "summary.json"
    files.write_json_atomic({"v": 1}, target)
    with pytest.raises(RuntimeError, match="disk full"):
        with files.atomic_file(target) as tmp:
            tmp.write_text('{"v": 2, "trunc')
            raise RuntimeError("disk full")
    assert target.read_text().replace(" ", "").replace("\n", "") == '{"v":1}'
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
