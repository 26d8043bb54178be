-- Leave-one-out by time (DESIGN.md "Evaluation protocol"): per user, order by event time and then
-- by position in the source (file, row) -- a stable sort by time over the raw file order. The last
-- interaction is test, the one before it valid, the rest train; users with fewer than 3 stay train.
with ordered as (

    select
        *,
        row_number() over (
            partition by user_id
            order by event_ts desc, source_file desc, source_row desc
        ) as recency_rank,
        count(*) over (partition by user_id) as user_interactions
    from {{ ref('fct_interactions') }}

)

select
    user_id,
    item_id,
    event_ts,
    case
        when user_interactions < 3 then 'train'
        when recency_rank = 1 then 'test'
        when recency_rank = 2 then 'valid'
        else 'train'
    end as split,
    rating,
    source_file,
    source_row
from ordered
