"""Benchmark: Feast online lookups (SDK and `feast serve`) against a raw SQLite query of the same values.

    make demo && make bench-online      # or: .venv/bin/python bench/online_lookup.py [--repeats 300]

Reads the user_stats features of 1 and of 100 users from the online store of RECLAKE_HOME
(default ./.reclake) three ways, in the same run: Feast's Python SDK (`get_online_features`),
Feast's HTTP server (`feast serve` on 127.0.0.1, POST /get-online-features), and the baseline —
one SELECT on Feast's own SQLite table plus decoding the stored protobuf values, with the entity
keys serialized beforehand. Prints p50/p99 latency in ms and each path's ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

from orchestration.core.feast import feast_command_env, feature_store
from orchestration.core.paths import Lake
from orchestration.core.settings import (
    FEAST_EXECUTABLE,
    FEATURE_REPO_DIR,
    apply_process_switches,
    home_from_env,
)
from orchestration.core.warehouse import query

FEATURES = [
    "n_interactions",
    "mean_rating",
    "rating_std",
    "days_since_first",
    "days_since_previous",
]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[
        min(len(ordered) - 1, int(0.99 * len(ordered)))
    ] * 1000


def timed(call, repeats: int) -> list[float]:
    for _ in range(5):
        call()  # warm caches and connections
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def raw_sqlite_reader(db_path: Path, user_ids: list[str]):
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    keys = [
        serialize_entity_key(
            EntityKey(join_keys=["user_id"], entity_values=[Value(string_val=u)]),
            entity_key_serialization_version=3,
        )
        for u in user_ids
    ]
    con = sqlite3.connect(str(db_path), check_same_thread=False)
    sql = (
        f"SELECT entity_key, feature_name, value FROM reclake_user_stats "
        f"WHERE entity_key IN ({','.join('?' * len(keys))})"
    )

    def read():
        values = {}
        for key, name, blob in con.execute(sql, keys):
            value = Value()
            value.ParseFromString(blob)
            values[(key, name)] = value
        assert len(values) == len(keys) * len(FEATURES)
        return values

    return read


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    apply_process_switches()
    home = home_from_env()
    store = feature_store(home)
    db_path = Path(store.config.online_store.path)
    if not db_path.exists():
        raise SystemExit(
            f"{db_path} not found: run `make demo` first (it materializes the online store)"
        )
    refs = [f"user_stats:{f}" for f in FEATURES]
    users = [
        r[0]
        for r in sqlite3.connect(str(db_path)).execute(
            "SELECT DISTINCT entity_key FROM reclake_user_stats LIMIT 1"
        )
    ]  # proves the table exists
    assert users
    all_users = query(
        Lake(home).warehouse, "select user_id from dim_users order by user_id limit 100"
    )["user_id"].tolist()

    port = 6566
    server = subprocess.Popen(
        [
            FEAST_EXECUTABLE,
            "-c",
            str(FEATURE_REPO_DIR),
            "serve",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=feast_command_env(home, "duckdb"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def http_reader(user_ids):
            body = json.dumps({"features": refs, "entities": {"user_id": user_ids}}).encode()

            def read():
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/get-online-features",
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    return json.load(response)

            return read

        deadline = time.monotonic() + 120
        while True:
            try:
                http_reader(["1"])()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("feast serve did not start within 120 s") from None
                time.sleep(1)

        print(
            f"{'entities':>8} {'path':<12}{'p50 ms':>9}{'p99 ms':>9}{'p50 x raw':>11}{'p99 x raw':>11}"
        )
        for n in (1, 100):
            ids = all_users[:n]
            raw = percentiles(timed(raw_sqlite_reader(db_path, ids), args.repeats))
            rows = [{"user_id": u} for u in ids]
            sdk = percentiles(
                timed(
                    lambda: store.get_online_features(features=refs, entity_rows=rows).to_dict(),  # noqa: B023
                    args.repeats,
                )
            )
            http = percentiles(timed(http_reader(ids), args.repeats))
            for label, (p50, p99) in [
                ("raw sqlite", raw),
                ("feast sdk", sdk),
                ("feast serve", http),
            ]:
                print(
                    f"{n:>8} {label:<12}{p50:>9.3f}{p99:>9.3f}{p50 / raw[0]:>11.1f}{p99 / raw[1]:>11.1f}"
                )
    finally:
        import os
        import signal

        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
