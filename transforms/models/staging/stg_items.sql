with source as (

    select * from {{ raw_source('items') }}

),

renamed as (

    select
        -- lineage
        _source_file as source_file,
        _source_row as source_row,
        -- the UTC day the record was landed for (landing zone); NULL when read from a snapshot
        cast(_landed_date as date) as landed_date,

        -- ids
        item_id,

        -- descriptive text
        trim(title) as title,
        description,
        -- genres arrive space- (RecBole) or pipe- (GroupLens) separated; store them pipe-separated
        nullif({{ regexp_replace_all("trim(coalesce(genres, ''))", "'[ |]+'", "'|'") }}, '') as genres,

        -- year: its own column, else the "(1995)" suffix GroupLens puts in titles
        coalesce(
            try_cast(trim(year) as integer),
            try_cast(regexp_extract(title, '\((\d{4})\)\s*$', 1) as integer)
        ) as release_year

    from source
    where _parse_error is null and not {{ is_blank('item_id') }}

)

select * from renamed
