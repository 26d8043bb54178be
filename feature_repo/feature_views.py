from datetime import timedelta

from data_sources import (
    item_stats_source,
    item_text_embedding_source,
    user_profile_embedding_source,
    user_recommendations_source,
    user_stats_source,
)
from entities import item, user
from feast import FeatureView, Field
from feast.types import Array, Float32, Float64, Int64, String

STATS_SCHEMA = [
    Field(name="n_interactions", dtype=Int64, description="train interactions up to this moment"),
    Field(name="mean_rating", dtype=Float64),
    Field(name="rating_std", dtype=Float64),
    Field(
        name="days_since_first",
        dtype=Float64,
        description="days from the first interaction to this moment",
    ),
    Field(
        name="days_since_previous",
        dtype=Float64,
        description="days since the moment before (NULL at the first)",
    ),
]

# A stats row describes the entity as of its timestamp. Point-in-time joins use the latest row no
# older than the TTL: a user's taste drifts, so a year-old summary is stale; items age slower.
user_stats = FeatureView(
    name="user_stats",
    entities=[user],
    ttl=timedelta(days=365),
    schema=STATS_SCHEMA,
    source=user_stats_source,
    online=True,
    tags={"owner": "reclake", "mart": "feat_user_stats"},
)
item_stats = FeatureView(
    name="item_stats",
    entities=[item],
    ttl=timedelta(days=730),
    schema=STATS_SCHEMA,
    source=item_stats_source,
    online=True,
    tags={"owner": "reclake", "mart": "feat_item_stats"},
)

# Text embeddings (384-d, all-MiniLM-L6-v2) of the LLM profiles. A profile summarises the whole
# train period, so it is stamped at its end and a point-in-time join only sees it after that.
item_text_embedding = FeatureView(
    name="item_text_embedding",
    entities=[item],
    ttl=timedelta(days=3650),
    schema=[
        Field(name="profile_embedding", dtype=Array(Float32)),
        Field(name="title_embedding", dtype=Array(Float32)),
    ],
    source=item_text_embedding_source,
    online=True,
    tags={"owner": "reclake", "asset": "item_text_embeddings"},
)
user_profile_embedding = FeatureView(
    name="user_profile_embedding",
    entities=[user],
    ttl=timedelta(days=3650),
    schema=[Field(name="profile_embedding", dtype=Array(Float32))],
    source=user_profile_embedding_source,
    online=True,
    tags={"owner": "reclake", "asset": "user_profile_embeddings"},
)
user_recommendations = FeatureView(
    name="user_recommendations",
    entities=[user],
    ttl=timedelta(days=30),
    schema=[
        Field(name="item_ids", dtype=Array(String), description="recommended items, best first"),
        Field(
            name="scores", dtype=Array(Float32), description="the model's score of each, same order"
        ),
        Field(name="model_name", dtype=String),
        Field(
            name="model_version",
            dtype=String,
            description="reclake-recommender version (the champion)",
        ),
        Field(
            name="partition_date", dtype=String, description="the batch_recommendations partition"
        ),
    ],
    source=user_recommendations_source,
    online=True,
    tags={"owner": "reclake", "asset": "online_recommendations"},
)
