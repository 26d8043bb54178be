-- One row per raw interaction record: renamed and cast, nothing filtered (validation is in
-- int_interactions_checked, so every raw row is accounted for downstream).
with source as (

    select * from {{ raw_source('interactions') }}

),

renamed as (

    select
        -- lineage: where the record came from
        _source_file as source_file,
        _source_sha256 as source_sha256,
        _source_row as source_row,
        _parse_error as parse_error,
        -- the UTC day the record was landed for (NULL when read from a snapshot)
        cast(_landed_date as date) as landed_date,

        -- ids: VARCHAR exactly as given, never re-coded
        user_id,
        item_id,

        -- numerics
        rating as rating_raw,
        try_cast(trim(rating) as double) as rating,

        -- timestamps (UTC)
        {{ adapter.quote('timestamp') }} as timestamp_raw,
        {{ parse_event_ts(adapter.quote('timestamp')) }} as event_ts,

        -- review text (Amazon-style datasets)
        review_summary,
        review_text

    from source

)

select * from renamed
