with source as (

    select * from {{ raw_source('item_tags') }}

),

renamed as (

    select
        -- ids
        user_id,
        item_id,

        -- text
        trim(tag) as tag,

        -- timestamps (UTC)
        {{ parse_event_ts(adapter.quote('timestamp')) }} as tagged_at

    from source
    where _parse_error is null and not {{ is_blank('item_id') }} and not {{ is_blank('tag') }}

)

select * from renamed
