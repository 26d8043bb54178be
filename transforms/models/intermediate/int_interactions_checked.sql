-- Every staged interaction with the first rule it breaks (NULL reason = clean). Rules in order:
-- a record that could not be parsed, missing ids, a missing/unreadable/out-of-range timestamp,
-- a missing/non-numeric/out-of-scale rating (explicit-feedback datasets only), and then, among
-- otherwise clean rows, repeats of the same (user, item, event_ts): an exact repeat is a
-- `duplicate_event`, one with another rating a `conflicting_duplicate`. The first in source order wins.
-- Repeats are looked for within one landed day (the cutter lands an event's repeats on its day), so a
-- day's rows never depend on another day's: an incremental day equals the same day in a full load.
with staged as (

    select * from {{ ref('stg_interactions') }}

),

row_rules as (

    select
        *,
        case
            when parse_error is not null then 'malformed_record'
            when {{ is_blank('user_id') }} then 'missing_user_id'
            when {{ is_blank('item_id') }} then 'missing_item_id'
            when {{ is_blank('timestamp_raw') }} then 'missing_timestamp'
            -- not a number of seconds either (NaN and infinity are not times): unreadable; a number: off the range
            when event_ts is null
                and not coalesce({{ is_finite('try_cast(trim(timestamp_raw) as double)') }}, false) then 'unparseable_timestamp'
            when event_ts is null
                or event_ts < cast('{{ var("min_event_ts") }}' as timestamp)
                or event_ts >= cast('{{ var("max_event_ts") }}' as timestamp) then 'timestamp_out_of_range'
            {% if var('has_ratings') %}
            when {{ is_blank('rating_raw') }} then 'missing_rating'
            when rating is null or not {{ is_finite('rating') }} then 'rating_not_a_number'
            when rating < {{ var('rating_min') }} or rating > {{ var('rating_max') }} then 'rating_out_of_range'
            {% endif %}
        end as row_reason
    from staged

),

repeats as (

    select
        *,
        row_number() over (
            partition by landed_date, user_id, item_id, event_ts order by source_file, source_row
        ) as key_repeat,
        row_number() over (
            partition by landed_date, user_id, item_id, event_ts, rating order by source_file, source_row
        ) as exact_repeat
    from row_rules
    where row_reason is null

),

checked as (

    select
        source_file, source_sha256, source_row, parse_error, landed_date,
        user_id, item_id, rating_raw, rating, timestamp_raw, event_ts,
        review_summary, review_text,
        case
            when exact_repeat > 1 then 'duplicate_event'
            when key_repeat > 1 then 'conflicting_duplicate'
        end as reason
    from repeats

    union all

    select
        source_file, source_sha256, source_row, parse_error, landed_date,
        user_id, item_id, rating_raw, rating, timestamp_raw, event_ts,
        review_summary, review_text,
        row_reason as reason
    from row_rules
    where row_reason is not null

)

select * from checked
