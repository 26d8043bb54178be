-- Point-in-time item features from TRAIN interactions only: one row per item and distinct train
-- timestamp (same join rule as feat_user_stats).
{{ train_stats_as_of('item_id') }}
