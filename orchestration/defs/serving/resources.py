"""The serving resource: how many items per user and how many users per scoring chunk."""

import os

import dagster as dg


class ServingResource(dg.ConfigurableResource):
    """Configured from RECLAKE_SERVING_* env vars (see README)."""

    top_k: int = 20
    chunk_users: int = 1024  # users scored per forward pass: bounds memory at chunk x catalog scores

    @classmethod
    def from_env(cls) -> "ServingResource":
        return cls(top_k=int(os.environ.get("RECLAKE_SERVING_TOP_K", "20")),
                   chunk_users=int(os.environ.get("RECLAKE_SERVING_CHUNK_USERS", "1024")))
