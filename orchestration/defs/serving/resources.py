"""The serving resource: how many items per user and how many users per scoring chunk."""

import dagster as dg


class ServingResource(dg.ConfigurableResource):
    """Configured from RECLAKE_SERVING_* env vars (core/settings.py; see README)."""

    top_k: int = 20
    # users scored per forward pass: bounds memory at chunk x catalog scores
    chunk_users: int = 1024
