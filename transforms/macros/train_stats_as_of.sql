{#- Point-in-time stats of one entity (user_id or item_id) from TRAIN interactions: one row per
    entity and distinct train timestamp, over everything up to and including that moment. Ties in
    time are aggregated first, so a moment's row never holds half of that moment's events. -#}
{% macro train_stats_as_of(entity) %}
with train as (

    select {{ entity }}, event_ts, rating
    from {{ ref('splits') }}
    where split = 'train'

),

per_moment as (

    select
        {{ entity }},
        event_ts,
        count(*) as n,
        count(rating) as n_rated,
        sum(rating) as rating_sum,
        sum(rating * rating) as rating_sq_sum
    from train
    group by {{ entity }}, event_ts

),

cumulative as (

    select
        {{ entity }},
        event_ts as event_timestamp,
        sum(n) over history as n_interactions,
        sum(n_rated) over history as n_rated,
        sum(rating_sum) over history as rating_sum,
        sum(rating_sq_sum) over history as rating_sq_sum,
        min(event_ts) over history as first_event_ts,
        lag(event_ts) over (partition by {{ entity }} order by event_ts) as previous_event_ts
    from per_moment
    window history as (partition by {{ entity }} order by event_ts rows between unbounded preceding and current row)

)

select
    {{ entity }},
    event_timestamp,
    cast(n_interactions as bigint) as n_interactions,
    rating_sum / nullif(n_rated, 0) as mean_rating,
    sqrt(greatest(rating_sq_sum / nullif(n_rated, 0) - power(rating_sum / nullif(n_rated, 0), 2), 0)) as rating_std,
    {{ seconds_between('first_event_ts', 'event_timestamp') }} / 86400.0 as days_since_first,
    {{ seconds_between('previous_event_ts', 'event_timestamp') }} / 86400.0 as days_since_previous
from cumulative
{% endmacro %}
