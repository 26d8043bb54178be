-- Point-in-time item features from TRAIN interactions only: one row per item and distinct train
-- timestamp (same join rule as feat_user_stats).
with train as (

    select item_id, event_ts, rating
    from {{ ref('splits') }}
    where split = 'train'

),

per_moment as (

    select
        item_id,
        event_ts,
        count(*) as n,
        count(rating) as n_rated,
        sum(rating) as rating_sum
    from train
    group by item_id, event_ts

),

cumulative as (

    select
        item_id,
        event_ts as event_timestamp,
        sum(n) over history as n_interactions,
        sum(n_rated) over history as n_rated,
        sum(rating_sum) over history as rating_sum,
        min(event_ts) over history as first_event_ts,
        lag(event_ts) over (partition by item_id order by event_ts) as previous_event_ts
    from per_moment
    window history as (partition by item_id order by event_ts rows between unbounded preceding and current row)

)

select
    item_id,
    event_timestamp,
    n_interactions,
    rating_sum / nullif(n_rated, 0) as mean_rating,
    date_diff('second', first_event_ts, event_timestamp) / 86400.0 as age_days,
    date_diff('second', previous_event_ts, event_timestamp) / 86400.0 as days_since_previous
from cumulative
