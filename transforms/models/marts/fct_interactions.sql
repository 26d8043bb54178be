-- The clean interactions: every checked row without a reason. source_file/source_row stay as
-- lineage and as the tie-breaker of the evaluation protocol's stable sort; landed_date is the day
-- the row was landed for (incremental by day: macros/daily_window.sql).
{{ config(
    materialized=daily_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_window() }}",
) }}

select
    user_id,
    item_id,
    {% if var('has_ratings') %} rating {% else %} cast(null as double) {% endif %} as rating,
    event_ts,
    source_file,
    source_row,
    landed_date
from {{ ref('int_interactions_checked') }}
where reason is null
{% if is_incremental() %} and {{ in_window('landed_date') }} {% endif %}
