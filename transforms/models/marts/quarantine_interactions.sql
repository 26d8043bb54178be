-- Every rejected raw row, as given, with the reason it was rejected (incremental by landed day,
-- like fct_interactions).
{{ config(
    materialized=daily_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_window() }}",
) }}

select
    source_file,
    source_sha256,
    source_row,
    user_id,
    item_id,
    rating_raw as rating,
    timestamp_raw as {{ adapter.quote('timestamp') }},
    event_ts,
    parse_error,
    reason,
    landed_date
from {{ ref('int_interactions_checked') }}
where reason is not null
{% if is_incremental() %} and {{ in_window('landed_date') }} {% endif %}
