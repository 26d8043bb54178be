-- The cold-item protocol (DESIGN.md "Evaluation protocol"; issue #34): films no model trains on,
-- to measure what a recommender does with a film its IDs know nothing about.
--   cold items  cold_item_share (0.15) of the items, drawn within each popularity decile (by a
--               seeded md5 of the id, var cold_item_seed) so popular and rare films are both in it
--   test        each user's first event on a cold item, when the user has 3 or more events on
--               warm items before it
--   valid       the user's last warm event before that (or the last of all, for users without test)
--   train       the user's other warm events before the test; users without a test keep all
-- A test user's events after the test, and every other event on a cold item, are left out: models
-- see only the training part of a user's history. Candidates at test are all items (dim_items);
-- ties in time are broken by source order, as in `splits`.
with item_counts as (

    select item_id, count(*) as n_events
    from {{ ref('fct_interactions') }}
    group by item_id

),

deciles as (

    select item_id, ntile(10) over (order by n_events, item_id) as decile
    from item_counts

),

drawn as (

    select
        item_id,
        row_number() over (
            partition by decile
            order by md5(item_id || ':' || '{{ var("cold_item_seed", 0) }}'), item_id
        ) as draw,
        count(*) over (partition by decile) as decile_size
    from deciles

),

cold as (

    select item_id
    from drawn
    where draw <= ceil({{ var('cold_item_share', 0.15) }} * decile_size)

),

events as (

    select
        f.user_id, f.item_id, f.event_ts, f.rating, f.source_file, f.source_row,
        c.item_id is not null as is_cold,
        row_number() over (
            partition by f.user_id order by f.event_ts, f.source_file, f.source_row
        ) as position
    from {{ ref('fct_interactions') }} as f
    left join cold as c on f.item_id = c.item_id

),

counted as (

    select
        *,
        sum(case when is_cold then 1 else 0 end) over (
            partition by user_id order by position rows unbounded preceding
        ) as cold_so_far,
        sum(case when is_cold then 0 else 1 end) over (
            partition by user_id order by position rows unbounded preceding
        ) as warm_so_far
    from events

),

tests as (

    select user_id, position as test_position
    from counted
    where is_cold and cold_so_far = 1 and warm_so_far >= 3

),

warm as (

    select c.*, t.test_position
    from counted as c
    left join tests as t on c.user_id = t.user_id
    where not c.is_cold and (t.test_position is null or c.position < t.test_position)

),

warm_ordered as (

    select
        *,
        row_number() over (partition by user_id order by position desc) as from_end,
        count(*) over (partition by user_id) as n_warm
    from warm

)

select
    user_id,
    item_id,
    event_ts,
    case when from_end = 1 and n_warm >= 3 then 'valid' else 'train' end as split,
    rating,
    source_file,
    source_row
from warm_ordered

union all

select c.user_id, c.item_id, c.event_ts, 'test' as split, c.rating, c.source_file, c.source_row
from counted as c
join tests as t on c.user_id = t.user_id and c.position = t.test_position
