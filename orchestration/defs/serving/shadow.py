"""Shadow lists: what every other current model would have served on day D, scored the same night
from the same data as the champion's and never served; next day's outcomes compare them.

shadow_recommendations[D]  each model's newest complete version on the champion's data version
                           (popularity, EASE, SASRec, LLM-SASRec, two-stage, less the champion's
                           model) and `popularity_7d` (the most-rated items of the 7 days before D)
                           -> lake/shadow_recommendations/date=D/model_name=<name>/recommendations.parquet
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import torch

from models import registry
from models.recsys.popularity import Popularity, PopularityConfig
from models.recsys.serving import SavedRecommender
from orchestration.core.partitions import daily_asset
from orchestration.core.resources import LakeResource
from orchestration.core.warehouse import query
from orchestration.defs.serving.resources import ServingResource
from orchestration.defs.serving.scoring import champion_or_failure, score_partition

RECENT_DAYS = 7
RECENT_POPULARITY = f"popularity_{RECENT_DAYS}d"


def recent_popularity(lake: LakeResource, date: str, days: int = RECENT_DAYS) -> registry.Champion:
    """A popularity model over the `days` days before `date` (items seen before `date`, counted on
    the window only): the baseline a deployment would run with no model at all."""
    end = datetime.fromisoformat(date).replace(tzinfo=UTC)
    counts = query(
        lake.warehouse_path,
        "select item_id, count(*) filter (where event_ts >= ?) as n from main.fct_interactions "
        "where event_ts < ? group by item_id order by item_id",
        [(end - timedelta(days=days)).replace(tzinfo=None), end.replace(tzinfo=None)],
    )
    model = Popularity(PopularityConfig(device="cpu"))
    model.counts = torch.as_tensor(counts["n"].to_numpy(np.float32))
    items = counts["item_id"].to_numpy(dtype=object)
    recommender = SavedRecommender(model, np.array([], dtype=object), items, [])
    return registry.Champion(f"{days}d-before-{date}", "", RECENT_POPULARITY, recommender)


def shadow_models(client, champion: registry.Champion) -> list[registry.Champion]:
    """Each other model's newest complete version on the champion's data version."""
    data_version = client.get_model_version(registry.REGISTERED_MODEL, champion.version).tags.get(
        "data_version", ""
    )
    return [
        registry.Champion(
            str(v.version), v.run_id, name, registry.load_version(client, str(v.version))
        )
        for name, v in sorted(registry.latest_per_model(client, data_version).items())
        if name != champion.model_name
    ]


@daily_asset(
    key="shadow_recommendations",
    group_name="serving",
    code_version="1",
    deps=["batch_recommendations"],
    kinds={"pytorch", "parquet"},
    description="The lists every other current model (and popularity over the last 7 "
    "days) would have served on day D, from the same data; never served, scored next day.",
)
def shadow_recommendations(
    context: dg.AssetExecutionContext, lake: LakeResource, serving: ServingResource
) -> dg.MaterializeResult:
    client = registry.connect(lake.paths.mlflow_dir)
    champion = champion_or_failure(client)
    shadows = shadow_models(client, champion)
    written = {}
    for date in context.partition_keys:
        for model in [*shadows, recent_popularity(lake, date)]:
            path = lake.paths.shadow_recommendations(date, model.model_name)
            facts = score_partition(context, lake, serving, model, date, path=path)
            written[model.model_name] = {"version": model.version, "rows": facts["rows"],
                                         "coverage": facts["coverage"]}  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "champion": f"{champion.model_name} v{champion.version}",
            "shadow_models": dg.MetadataValue.json(written),
            "dagster/row_count": sum(w["rows"] for w in written.values()),
        }
    )
