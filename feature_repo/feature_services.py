from feast import FeatureService
from feature_views import (
    item_stats,
    item_text_embedding,
    user_profile_embedding,
    user_recommendations,
    user_stats,
)

# One service per consumer, so each can evolve (and be versioned) on its own.
ranking_v1 = FeatureService(
    name="ranking_v1",
    features=[user_stats, item_stats],
    description="Training sets for rankers: user and item stats at interaction time",
)
serving_v1 = FeatureService(
    name="serving_v1",
    features=[user_stats, item_stats],
    description="What apps read online for a (user, item) pair",
)
embeddings_v1 = FeatureService(
    name="embeddings_v1",
    features=[user_profile_embedding, item_text_embedding],
    description="LLM-profile text embeddings of a user and an item",
)
recommendations_v1 = FeatureService(
    name="recommendations_v1",
    features=[user_recommendations],
    description="The champion's nightly top-K for a user, with the model version",
)
