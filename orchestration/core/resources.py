"""Dagster resources: where the lake is and which dataset it holds."""


import os
from pathlib import Path

import dagster as dg

from orchestration.defs.ingest.datasets import DatasetSpec, fetch_ml100k, resolve_dataset
from orchestration.lake import inside_home
from orchestration.settings import reclake_home
from orchestration.spark import engine_from_env


class LakeResource(dg.ConfigurableResource):
    """The data home (RECLAKE_HOME) and the dataset chosen by RECLAKE_DATASET / RECLAKE_DATA_DIR."""

    home: str
    dataset: str = "ml-100k"
    data_dir: str | None = None
    rating_scale: str | None = None  # "min,max" for a generic folder; named datasets know theirs
    engine: str = "duckdb"  # RECLAKE_ENGINE: duckdb (embedded) or spark (dbt-spark + Spark batch scoring)

    @classmethod
    def from_env(cls) -> "LakeResource":
        return cls(
            home=str(reclake_home()),
            dataset=os.environ.get("RECLAKE_DATASET", "ml-100k"),
            data_dir=os.environ.get("RECLAKE_DATA_DIR") or None,
            rating_scale=os.environ.get("RECLAKE_RATING_SCALE") or None,
            engine=engine_from_env(),
        )

    @property
    def home_path(self) -> Path:
        return Path(self.home)

    @property
    def warehouse_path(self) -> Path:
        return self.home_path / "warehouse.duckdb"

    def spec(self) -> DatasetSpec:
        return resolve_dataset(self.dataset, self.data_dir, self.rating_scale)

    def path(self, *parts: str) -> Path:
        """A path under the data home; a part that would lead outside it raises OutsideHomeError."""
        return inside_home(self.home_path, *parts)

    def raw_dir(self) -> Path:
        return self.path("lake", "raw", self.spec().name)

    def source_folder(self, log=print) -> Path:
        """The local folder (or file) holding the dataset, fetching ML-100K if it is not there."""
        spec = self.spec()
        if spec.path is not None:
            return spec.path
        return fetch_ml100k(self.home_path / "cache", log=log)
