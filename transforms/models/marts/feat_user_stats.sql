-- Point-in-time user features from TRAIN interactions only: one row per user and distinct train
-- timestamp, holding the stats of everything the user did up to and including that moment.
-- A consumer predicting an event at time t must join on t minus a moment (Feast: entity
-- timestamp = event_ts - 1 microsecond) so the row stamped t, which includes t, is not used.
{{ train_stats_as_of('user_id') }}
