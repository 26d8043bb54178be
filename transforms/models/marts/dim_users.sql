-- Every user seen in the users file or in the clean interactions, with the source's attributes.
with numbered as (

    select *, row_number() over (partition by user_id order by source_file, source_row) as nth
    from {{ ref('stg_users') }}

),

attributes as (

    select * from numbered where nth = 1

),

all_users as (

    select user_id from attributes
    union
    select distinct user_id from {{ ref('fct_interactions') }}

)

select
    u.user_id,
    a.age,
    a.gender,
    a.occupation,
    a.zip_code
from all_users as u
left join attributes as a on a.user_id = u.user_id
