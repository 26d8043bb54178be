"""Group `evaluation`: the tuned judge (models/evaluation/judge_probe.py), fitted on train, calibrated on valid.

judge_probe   the judge LLM reads every item card once (hidden states, joined with a sentence
              encoder's vector of the same card); a probe learns from the
              train split which items a user picks; an isotonic map fitted on the valid split turns
              its scores into probabilities -> lake/judge_probe/<model>/probe.npz, an MLflow run
              (valid AUC + CI, ECE, reliability curve) and a version of the `reclake-judge` model
"""

import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from models import registry
from models.common.device import torch_threads
from models.common.stats import auc, auc_interval, ece, reliability
from models.evaluation.cases import random_unseen, sample_users
from models.evaluation.judge_probe import (
    Calibration,
    ProbeConfig,
    SentenceEncoder,
    dump,
    fit_probe,
    item_card_texts,
    read_cards,
)
from models.recsys.data import SplitData
from models.text.sanitize import sanitize_fields
from orchestration.core.files import atomic_file
from orchestration.core.lineage import run_tags
from orchestration.core.resources import LakeResource, LLMResource
from orchestration.core.ui import png_markdown
from orchestration.core.unchanged import Unchanged
from orchestration.core.warehouse import load_splits, query
from orchestration.defs.evaluation import plots
from orchestration.defs.evaluation.resources import JudgeResource

PROBE_CODE_VERSION = "1"


def reader_llm(judge: JudgeResource, llm: LLMResource) -> LLMResource:
    """The LLM whose hidden states the probe reads: the judge's first LLM, on the transformers
    runtime (llama.cpp's server gives no hidden states; both read the same GGUF weights)."""
    first = judge.llms(llm)[0]
    if first.backend == "openai":
        raise dg.Failure(
            "judge_probe reads an LLM's hidden states, which an OpenAI-style server does not give; "
            "use RECLAKE_JUDGE_KIND=zero-shot with RECLAKE_LLM_BACKEND=openai"
        )
    return (
        first.model_copy(update={"runtime": "transformers"})
        if first.backend == "embedded"
        else first
    )


def probe_key(reader: LLMResource) -> str:
    """The folder name of a reader's probe: one tuned judge per LLM."""
    return f"{reader.backend}-{reader.embedded_model if reader.backend == 'embedded' else Path(reader.model_path).name}"


def calibration_sample(
    data: SplitData, vectors: np.ndarray, judge: JudgeResource, probe
) -> pd.DataFrame:
    """Valid-split users (sampled by train activity, like the nightly judge): the held-out valid item
    and `n_random` items outside the user's train history and valid item, scored from train history."""
    users = data.eval_users("valid")
    index = {user_id: u for u, user_id in enumerate(data.users)}
    chosen = [
        index[u]
        for u in sample_users(
            pd.Series({data.users[u]: len(data.train[u]) for u in users}), judge.n_users, judge.seed
        )
    ]
    rng = np.random.default_rng(judge.seed)
    rows = []
    for u in chosen:
        history, target = data.train[u], data.valid[u]
        randoms = random_unseen(rng, data.n_items, np.append(history, target), judge.n_random)
        items = np.append(target, randoms)
        scores = probe.raw_scores(vectors, history, items)
        rows += [
            {
                "user_id": data.users[u],
                "role": "heldout" if k == 0 else "random",
                "score": float(s),
                "label": int(k == 0),
            }
            for k, s in enumerate(scores)
        ]
    return pd.DataFrame(rows)


def cross_fitted_ece(sample: pd.DataFrame) -> float:
    """ECE of the calibration map on users it was not fitted on (two halves, each fitted on the
    other): an honest estimate, unlike the ECE of a map on its own fitting data."""
    users = np.array(sorted(sample["user_id"].unique()))
    half = set(users[np.random.default_rng(0).permutation(len(users))[: len(users) // 2]])
    first = sample["user_id"].isin(half)
    probabilities = np.zeros(len(sample))
    for fit_on, apply_to in ((first, ~first), (~first, first)):
        cal = Calibration.fit(
            sample.loc[fit_on, "score"].to_numpy(), sample.loc[fit_on, "label"].to_numpy()
        )
        probabilities[apply_to.to_numpy()] = cal(sample.loc[apply_to, "score"].to_numpy())
    return ece(probabilities, sample["label"].to_numpy())


@dg.asset(
    group_name="evaluation",
    code_version=PROBE_CODE_VERSION,
    deps=["splits", "dim_items"],
    kinds={"pytorch", "scikitlearn", "mlflow"},
    description="The tuned judge: a probe on the judge LLM's hidden states of item cards, fitted on the train "
    "split, calibrated (isotonic) on the valid split; registered as a reclake-judge version.",
)
def judge_probe(
    context: dg.AssetExecutionContext, lake: LakeResource, llm: LLMResource, judge: JudgeResource
) -> dg.MaterializeResult:
    reader = reader_llm(judge, llm)
    config = ProbeConfig(seed=judge.seed)
    path = lake.paths.judge_probe(probe_key(reader))
    settings = {
        "reader": reader.model_dump(include={"backend", "embedded_model", "model_path"}),
        "encoder": SentenceEncoder.model,
        "probe": asdict(config),
        "calibration": {"n_users": judge.n_users, "n_random": judge.n_random, "seed": judge.seed},
    }
    if (memo := Unchanged(context, config=settings, outputs_present=path.exists())).skip:
        return memo.result
    data, data_version = load_splits(lake.warehouse_path)
    items = query(
        lake.warehouse_path, "select item_id, title, release_year, genres from main.dim_items"
    ).set_index("item_id")
    titles = [items["title"].get(i) or f"item {i}" for i in data.items]
    cards = item_card_texts(
        sanitize_fields(titles)[0],
        [items["release_year"].get(i) for i in data.items],
        [items["genres"].get(i) for i in data.items],
    )

    started = time.perf_counter()
    backend = reader.load(lake.home_path, context.log.info)
    cache = reader.cache_dir(lake.home_path)
    with torch_threads(
        llm.torch_threads
    ):  # the LLM's reading of each card beside a sentence encoder's
        vectors = np.hstack(
            [
                read_cards(backend, cards, cache, log=context.log.info),
                read_cards(SentenceEncoder(), cards, cache, log=context.log.info),
            ]
        )
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    probe, facts = fit_probe(vectors, data, config)
    tuning_s = time.perf_counter() - started
    sample = calibration_sample(data, vectors, judge, probe)
    calibration = Calibration.fit(sample["score"].to_numpy(), sample["label"].to_numpy())
    heldout, random = (
        sample.loc[sample["label"] == 1, "score"],
        sample.loc[sample["label"] == 0, "score"],
    )
    valid_auc, interval = auc(heldout, random), auc_interval(sample)
    metrics = {
        "valid_auc": valid_auc,
        "valid_auc_ci_low": interval[0],
        "valid_auc_ci_high": interval[1],
        "ece_uncalibrated": ece(sample["score"].to_numpy(), sample["label"].to_numpy()),
        "ece_calibrated_cross_fitted": cross_fitted_ece(sample),
        "read_items_s": read_s,
        "tuning_s": tuning_s,
        **facts,
    }
    context.log.info(
        f"judge_probe: valid AUC {valid_auc:.3f} {interval}, ECE {metrics['ece_uncalibrated']:.3f} -> "
        f"{metrics['ece_calibrated_cross_fitted']:.3f} calibrated; read {read_s:.0f} s, tuned {tuning_s:.1f} s"
    )
    with atomic_file(path) as tmp:
        tmp.write_bytes(dump(probe, calibration, vectors, data.items, config))

    client = registry.connect(lake.paths.mlflow_dir)
    with tempfile.TemporaryDirectory(dir=lake.home_path) as workdir:
        curve = reliability(calibration(sample["score"].to_numpy()), sample["label"].to_numpy())
        chart = plots.reliability(
            curve,
            reliability(sample["score"].to_numpy(), sample["label"].to_numpy()),
            Path(workdir) / "judge_reliability.png",
        )
        tags = {**run_tags(context, data_version=data_version), "judge_reader": backend.model}
        run_id = registry.log_report_run(
            client,
            "judge_probe",
            tags,
            params={**asdict(config), "reader": backend.model},
            metrics=metrics,
            dicts={"calibration.json": {"x": calibration.x.tolist(), "y": calibration.y.tolist()}},
            artifacts={"probe": [path], "plots": [chart]},
        )
        version = registry.register_judge(
            client, run_id, "probe", {"data_version": data_version, "reader": backend.model}
        )
        metadata_plot = png_markdown(chart)
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                **metrics,
                "reader": backend.model,
                "mlflow_run_id": run_id,
                "judge_model_version": version,
                "valid_auc_ci": dg.MetadataValue.json(interval),
                "reliability": metadata_plot,
                "path": dg.MetadataValue.path(str(path)),
            },
            data_version=dg.DataVersion(f"{registry.JUDGE_MODEL}-v{version}"),
        )
    )
