"""`reclake data synth`: deterministic, shaped like real interaction logs, broken where asked."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
from support.pipelines import RECLAKE

from orchestration.defs.ingest.synth import SynthConfig, synth_interactions, write_synthetic_dataset


def test_synth_cli_is_deterministic_given_the_seed(tmp_path):
    args = [
        "data",
        "synth",
        "--users",
        "300",
        "--items",
        "200",
        "--interactions",
        "5000",
        "--malformed-share",
        "0.02",
    ]
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        done = subprocess.run(
            [RECLAKE, *args, "--seed", seed, "--out", str(tmp_path / name)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    same = [(tmp_path / n / "interactions.csv").read_bytes() for n in "abc"]
    assert same[0] == same[1] and same[0] != same[2]
    assert "100 malformed rows" in done.stdout


def test_synth_shape_power_law_items_sessions_and_every_user():
    table = synth_interactions(
        SynthConfig(users=2_000, items=1_000, interactions=100_000, seed=0)
    ).to_pandas()
    assert len(table) == 100_000 and table["user_id"].nunique() == 2_000
    counts = table["item_id"].value_counts().to_numpy()
    assert counts[:10].sum() > 0.15 * len(
        table
    )  # Zipf head: the top 1% of items hold > 15% of events
    assert counts[-500:].mean() < 0.05 * counts[:10].mean()  # and a long tail
    gaps = (
        table.assign(t=table["timestamp"].astype(np.int64)).groupby("user_id")["t"].diff().dropna()
    )
    assert (
        (gaps >= 0).all() and gaps.median() < 600 and gaps.quantile(0.95) > 86_400
    )  # sessions: minutes inside, days between
    assert set(table["rating"].astype(int)) <= {1, 2, 3, 4, 5}


def test_synth_malformed_rows_are_quarantined_for_their_reason(tmp_path):
    """The broken rows the generator writes are the ones the loader + dbt reasons catch (checked on the
    raw values with the same rules, without running dbt)."""
    write_synthetic_dataset(
        SynthConfig(users=100, items=50, interactions=4_000, seed=3, malformed_share=0.05),
        tmp_path,
        log=lambda _: None,
    )
    raw = pd.read_csv(tmp_path / "interactions.csv", dtype=str, keep_default_na=False)
    blank_user = raw["user_id"] == ""
    bad_rating = ~raw["rating"].isin(list("12345"))
    bad_time = ~raw["timestamp"].str.isdigit()
    duplicate = raw.duplicated(keep="first") & ~(blank_user | bad_rating | bad_time)
    assert (
        150 <= (blank_user | bad_rating | bad_time | duplicate).sum() <= 200
    )  # 5% of 4,000, a few overlap
    assert blank_user.any() and bad_rating.any() and bad_time.any() and duplicate.any()


@pytest.mark.parametrize(
    "bad",
    [dict(users=0), dict(interactions=10, users=20), dict(malformed_share=1.5), dict(fmt="xlsx")],
)
def test_synth_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        SynthConfig(**{**dict(users=10, items=10, interactions=100), **bad})
