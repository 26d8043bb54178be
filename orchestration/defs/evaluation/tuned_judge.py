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

from models import registry
from models.common.device import torch_threads
from models.common.stats import reliability
from models.evaluation.judge_cards import SentenceEncoder, item_card_texts, read_cards
from models.evaluation.judge_probe import ProbeConfig, dump
from models.evaluation.judge_tuning import TunedProbe, tune_probe
from models.text.sanitize import sanitize_fields
from orchestration.core.files import atomic_file
from orchestration.core.lineage import run_tags
from orchestration.core.resources import LakeResource, LLMResource
from orchestration.core.ui import png_markdown
from orchestration.core.unchanged import Unchanged
from orchestration.core.warehouse import load_splits, query
from orchestration.defs.evaluation import plots
from orchestration.defs.evaluation.resources import JudgeResource

PROBE_CODE_VERSION = "2"  # 2: negatives of three kinds (#35)


def probe_config(judge: JudgeResource) -> ProbeConfig:
    """The probe's settings: the nightly fit and the evaluator split's refit use the same."""
    return ProbeConfig(seed=judge.seed)


def reader_llm(judge: JudgeResource, llm: LLMResource) -> LLMResource:
    """The LLM whose hidden states the probe reads: the judge's first LLM, on the transformers
    runtime (llama.cpp's server gives no hidden states; both read the same GGUF weights)."""
    reader = judge.llms(llm)[0].hidden_state_reader()
    if reader is None:
        raise dg.Failure(
            "judge_probe reads an LLM's hidden states, which an OpenAI-style server does not give; "
            "use RECLAKE_JUDGE_KIND=zero-shot with RECLAKE_LLM_BACKEND=openai"
        )
    return reader


def probe_key(reader: LLMResource) -> str:
    """The folder name of a reader's probe: one tuned judge per LLM."""
    return f"{reader.backend}-{reader.embedded_model if reader.backend == 'embedded' else Path(reader.model_path).name}"


def read_item_vectors(
    lake: LakeResource, reader: LLMResource, llm: LLMResource, data, log
) -> tuple[np.ndarray, str]:
    """Every item card read once: the reader LLM's hidden states beside a sentence encoder's vector
    of the same card (both cached by card); the vectors in `data.items` order and the reader's name."""
    items = query(
        lake.warehouse_path, "select item_id, title, release_year, genres from main.dim_items"
    ).set_index("item_id")
    titles = [items["title"].get(i) or f"item {i}" for i in data.items]
    cards = item_card_texts(
        sanitize_fields(titles)[0],
        [items["release_year"].get(i) for i in data.items],
        [items["genres"].get(i) for i in data.items],
    )
    backend = reader.load(lake.home_path, log)
    cache = reader.cache_dir(lake.home_path)
    with torch_threads(llm.torch_threads):
        vectors = np.hstack(
            [
                read_cards(backend, cards, cache, log=log),
                read_cards(SentenceEncoder(), cards, cache, log=log),
            ]
        )
    return vectors, backend.model


def log_probe_run(
    context: dg.AssetExecutionContext,
    lake: LakeResource,
    tuned: TunedProbe,
    config: ProbeConfig,
    reader_name: str,
    path: Path,
    data_version: str,
) -> tuple[str, str, dict]:
    """One MLflow run `judge_probe` (metrics, the calibration map, the probe file, the reliability
    plot) and a `reclake-judge` version of it; the run id, the version and the plot as metadata."""
    client = registry.connect(lake.paths.mlflow_dir)
    scores, labels = tuned.sample["score"].to_numpy(), tuned.sample["label"].to_numpy()
    with tempfile.TemporaryDirectory(dir=lake.home_path) as workdir:
        chart = plots.reliability(
            reliability(tuned.calibration(scores), labels),
            reliability(scores, labels),
            Path(workdir) / "judge_reliability.png",
        )
        tags = {**run_tags(context, data_version=data_version), "judge_reader": reader_name}
        calibration = {"x": tuned.calibration.x.tolist(), "y": tuned.calibration.y.tolist()}
        run_id = registry.log_report_run(
            client,
            "judge_probe",
            tags,
            params={**asdict(config), "reader": reader_name},
            metrics=tuned.metrics,
            dicts={"calibration.json": calibration},
            artifacts={"probe": [path], "plots": [chart]},
        )
        version = registry.register_judge(
            client, run_id, "probe", {"data_version": data_version, "reader": reader_name}
        )
        return run_id, version, {"reliability": png_markdown(chart)}


@dg.asset(
    group_name="evaluation",
    code_version=PROBE_CODE_VERSION,
    deps=["splits", "dim_items"],
    kinds={"pytorch", "scikitlearn", "mlflow"},
    description="The tuned judge: a probe on the judge LLM's hidden states of item cards, fitted on "
    "the train split, calibrated (isotonic) on the valid split; registered as a reclake-judge "
    "version.",
)
def judge_probe(
    context: dg.AssetExecutionContext, lake: LakeResource, llm: LLMResource, judge: JudgeResource
) -> dg.MaterializeResult:
    reader = reader_llm(judge, llm)
    config = probe_config(judge)
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
    started = time.perf_counter()
    vectors, reader_name = read_item_vectors(lake, reader, llm, data, context.log.info)
    read_s = time.perf_counter() - started
    # fitted on torch's default threads, as it always was (thread count changes float sums)
    tuned = tune_probe(
        vectors, data, config, n_users=judge.n_users, n_random=judge.n_random, seed=judge.seed
    )
    tuned.metrics["read_items_s"] = read_s
    m = tuned.metrics
    context.log.info(
        f"judge_probe: valid AUC {m['valid_auc']:.3f} {tuned.valid_auc_ci}, ECE "
        f"{m['ece_uncalibrated']:.3f} -> {m['ece_calibrated_cross_fitted']:.3f} calibrated; "
        f"read {read_s:.0f} s, tuned {m['tuning_s']:.1f} s"
    )
    with atomic_file(path) as tmp:
        tmp.write_bytes(dump(tuned.probe, tuned.calibration, vectors, data.items, config))
    run_id, version, plot = log_probe_run(
        context, lake, tuned, config, reader_name, path, data_version
    )
    metadata = {
        **m,
        "reader": reader_name,
        "mlflow_run_id": run_id,
        "judge_model_version": version,
        "valid_auc_ci": dg.MetadataValue.json(tuned.valid_auc_ci),
        **plot,
        "path": dg.MetadataValue.path(str(path)),
    }
    return memo.stamp(
        dg.MaterializeResult(
            metadata=metadata, data_version=dg.DataVersion(f"{registry.JUDGE_MODEL}-v{version}")
        )
    )
