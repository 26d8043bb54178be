-- Every item seen in the catalog file or in the clean interactions, with whatever text the source
-- has. Review snippets come from TRAIN interactions only, so profiles built on them cannot see the
-- held-out valid/test reviews.
with numbered as (

    select *, row_number() over (partition by item_id order by source_file, source_row) as nth
    from {{ ref('stg_items') }}

),

catalog as (

    select * from numbered where nth = 1

),

landed as (

    -- the day an item first reached the landing zone: from then on the nightly lists may hold it,
    -- with or without interactions (NULL when read from a snapshot)
    select item_id, min(landed_date) as first_landed_on
    from {{ ref('stg_items') }}
    group by item_id

),

interacted as (

    select distinct item_id from {{ ref('fct_interactions') }}

),

all_items as (

    select item_id from catalog
    union
    select item_id from interacted

),

distinct_tags as (

    select distinct item_id, tag from {{ ref('stg_item_tags') }}

),

tags as (

    select item_id, {{ ordered_string_agg('tag', "'|'", 'tag') }} as tags
    from distinct_tags
    group by item_id

),

train_reviews as (

    select
        s.item_id,
        {{ ordered_string_agg(
            "coalesce(r.review_summary || ': ', '') || left(coalesce(r.review_text, ''), 300)",
            "' || '", 's.source_file, s.source_row') }} as review_snippets
    from {{ ref('splits') }} as s
    join {{ ref('stg_interactions') }} as r
        on r.source_file = s.source_file and r.source_row = s.source_row
    where s.split = 'train' and (r.review_text is not null or r.review_summary is not null)
    group by s.item_id

)

select
    a.item_id,
    c.title,
    c.release_year,
    c.genres,
    t.tags,
    c.description,
    -- at most ~2,000 characters of train-only review text
    left(rv.review_snippets, 2000) as review_snippets,
    c.item_id is not null as in_catalog,
    l.first_landed_on
from all_items as a
left join catalog as c on c.item_id = a.item_id
left join landed as l on l.item_id = a.item_id
left join tags as t on t.item_id = a.item_id
left join train_reviews as rv on rv.item_id = a.item_id
