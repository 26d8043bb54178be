from datetime import timedelta

from feast import FeatureView, Field
from feast.types import Float64, Int64

from data_sources import item_stats_source, user_stats_source
from entities import item, user

STATS_SCHEMA = [
    Field(name="n_interactions", dtype=Int64, description="train interactions up to this moment"),
    Field(name="mean_rating", dtype=Float64),
    Field(name="rating_std", dtype=Float64),
    Field(name="days_since_first", dtype=Float64, description="days from the first interaction to this moment"),
    Field(name="days_since_previous", dtype=Float64, description="days since the moment before (NULL at the first)"),
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
