-- Point-in-time user features from TRAIN interactions only: one row per user and distinct train
-- timestamp, holding the stats of everything the user did up to and including that moment.
-- A consumer predicting an event at time t must join on t minus a moment (Feast: entity
-- timestamp = event_ts - 1 microsecond) so the row stamped t, which includes t, is not used.
with train as (

    select user_id, event_ts, rating
    from {{ ref('splits') }}
    where split = 'train'

),

per_moment as (

    select
        user_id,
        event_ts,
        count(*) as n,
        count(rating) as n_rated,
        sum(rating) as rating_sum,
        sum(rating * rating) as rating_sq_sum
    from train
    group by user_id, event_ts

),

cumulative as (

    select
        user_id,
        event_ts as event_timestamp,
        sum(n) over history as n_interactions,
        sum(n_rated) over history as n_rated,
        sum(rating_sum) over history as rating_sum,
        sum(rating_sq_sum) over history as rating_sq_sum,
        min(event_ts) over history as first_event_ts,
        lag(event_ts) over (partition by user_id order by event_ts) as previous_event_ts
    from per_moment
    window history as (partition by user_id order by event_ts rows between unbounded preceding and current row)

)

select
    user_id,
    event_timestamp,
    n_interactions,
    rating_sum / nullif(n_rated, 0) as mean_rating,
    sqrt(greatest(rating_sq_sum / nullif(n_rated, 0) - power(rating_sum / nullif(n_rated, 0), 2), 0)) as rating_std,
    date_diff('second', first_event_ts, event_timestamp) / 86400.0 as tenure_days,
    date_diff('second', previous_event_ts, event_timestamp) / 86400.0 as days_since_previous
from cumulative
