-- The cold-user protocol (issue #34): people no model trained on, recommended to after their first
-- 1, 3 and 5 events.
--   cold users    cold_user_share (0.15) of the users with 6 or more events, drawn within each
--                 activity decile by a seeded md5 of the id (var cold_user_seed)
--   context       a cold user's first context_size events (1, 3 or 5): the history a model sees,
--                 never trained on
--   test          the cold user's next event (number context_size + 1)
--   valid, train  every other user's last event, and the ones before it
-- A cold user's rows repeat once per context size; other users' rows have context_size null. The
-- protocol splits by user, not by time: other users' train events may come after a cold user's
-- test, as in user-split cold-start protocols. Ties in time are broken by source order.
with events as (

    select
        user_id, item_id, event_ts, rating, source_file, source_row,
        row_number() over (
            partition by user_id order by event_ts, source_file, source_row
        ) as position,
        count(*) over (partition by user_id) as n_events
    from {{ ref('fct_interactions') }}

),

deciles as (

    select user_id, ntile(10) over (order by n_events, user_id) as decile
    from (select distinct user_id, n_events from events where n_events >= 6) as active

),

drawn as (

    select
        user_id,
        row_number() over (
            partition by decile
            order by md5(user_id || ':' || '{{ var("cold_user_seed", 0) }}'), user_id
        ) as draw,
        count(*) over (partition by decile) as decile_size
    from deciles

),

cold as (

    select user_id
    from drawn
    where draw <= ceil({{ var('cold_user_share', 0.15) }} * decile_size)

),

context_sizes as (

    select 1 as context_size
    union all select 3
    union all select 5

)

select
    e.user_id,
    e.item_id,
    e.event_ts,
    case when e.position = e.n_events and e.n_events >= 3 then 'valid' else 'train' end as split,
    cast(null as integer) as context_size,
    e.rating,
    e.source_file,
    e.source_row
from events as e
where e.user_id not in (select user_id from cold)

union all

select
    e.user_id,
    e.item_id,
    e.event_ts,
    case when e.position <= s.context_size then 'context' else 'test' end as split,
    s.context_size,
    e.rating,
    e.source_file,
    e.source_row
from events as e
join cold as c on e.user_id = c.user_id
cross join context_sizes as s
where e.position <= s.context_size + 1
