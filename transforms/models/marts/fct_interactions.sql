-- The clean interactions: every checked row without a reason. source_file/source_row stay as
-- lineage and as the tie-breaker of the evaluation protocol's stable sort.
select
    user_id,
    item_id,
    {% if var('has_ratings') %} rating {% else %} cast(null as double) {% endif %} as rating,
    event_ts,
    source_file,
    source_row
from {{ ref('int_interactions_checked') }}
where reason is null
