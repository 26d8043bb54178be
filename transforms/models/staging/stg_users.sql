with source as (

    select * from {{ raw_source('users') }}

),

renamed as (

    select
        -- lineage
        _source_file as source_file,
        _source_row as source_row,

        -- ids
        user_id,

        -- attributes
        try_cast(trim(age) as integer) as age,
        nullif(trim(gender), '') as gender,
        nullif(trim(occupation), '') as occupation,
        nullif(trim(zip_code), '') as zip_code

    from source
    where _parse_error is null and not {{ is_blank('user_id') }}

)

select * from renamed
