-- Every rejected raw row, as given, with the reason it was rejected.
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
    reason
from {{ ref('int_interactions_checked') }}
where reason is not null
