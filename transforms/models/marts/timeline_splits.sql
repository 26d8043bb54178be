-- The timeline protocol (DESIGN.md "Evaluation protocol"; issue #33): one global cutoff for all users,
-- so nothing after it is seen by a model, a profile or a tuning step. With test_cut the moment
-- before which (1 - timeline_test_share) of all events fall, and valid_cut the same one share
-- earlier:
--   train    events before valid_cut (what models fit on)
--   valid    each user's first event in [valid_cut, test_cut) on an item seen before valid_cut,
--            for users with an event before valid_cut
--   context  the user's other events in [valid_cut, test_cut): history when predicting test, not
--            trained on (a model trained at valid_cut, serving at test_cut)
--   test     each user's first event at or after test_cut on an item seen before test_cut, for users
--            with an event before test_cut (new users are the cold-start protocol's)
-- Later events are left out. Ties in time are broken by source order, as in `splits`.
with ranked as (

    select
        event_ts,
        row_number() over (order by event_ts, source_file, source_row) as position,
        count(*) over () as n_events
    from {{ ref('fct_interactions') }}

),

cutoffs as (

    select
        min(case when position > n_events * (1 - {{ var('timeline_test_share', 0.1) }})
            then event_ts end) as test_cut,
        min(case when position > n_events * (1 - 2 * {{ var('timeline_test_share', 0.1) }})
            then event_ts end) as valid_cut
    from ranked

),

events as (

    select f.user_id, f.item_id, f.event_ts, f.rating, f.source_file, f.source_row,
        c.valid_cut, c.test_cut
    from {{ ref('fct_interactions') }} as f
    cross join cutoffs as c

),

first_seen as (

    select item_id, min(event_ts) as item_first_ts
    from events
    group by item_id

),

user_start as (

    select user_id, min(event_ts) as user_first_ts
    from events
    group by user_id

),

labelled as (

    select
        e.*,
        case
            when e.event_ts < e.valid_cut then 'before_valid'
            when e.event_ts < e.test_cut then 'window'
            else 'after'
        end as period,
        (
            (e.event_ts < e.test_cut and i.item_first_ts < e.valid_cut
                and u.user_first_ts < e.valid_cut)
            or (e.event_ts >= e.test_cut and i.item_first_ts < e.test_cut
                and u.user_first_ts < e.test_cut)
        ) as is_candidate
    from events as e
    join first_seen as i on e.item_id = i.item_id
    join user_start as u on e.user_id = u.user_id

),

ordered as (

    select
        *,
        row_number() over (
            partition by user_id, period, is_candidate
            order by event_ts, source_file, source_row
        ) as order_in_period
    from labelled

)

select
    user_id,
    item_id,
    event_ts,
    case
        when period = 'before_valid' then 'train'
        when period = 'window' and is_candidate and order_in_period = 1 then 'valid'
        when period = 'window' then 'context'
        else 'test'
    end as split,
    rating,
    source_file,
    source_row
from ordered
where period != 'after' or (is_candidate and order_in_period = 1)
