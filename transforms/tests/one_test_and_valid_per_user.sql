-- Each user with 3+ interactions has exactly one test and one valid row, and the test row is
-- the user's latest interaction; users with fewer have none.
with per_user as (
    select
        user_id,
        count(*) as n,
        count(*) filter (where split = 'test') as n_test,
        count(*) filter (where split = 'valid') as n_valid,
        max(event_ts) as last_ts,
        max(event_ts) filter (where split = 'test') as test_ts
    from {{ ref('splits') }}
    group by user_id
)
select *
from per_user
where (n >= 3 and (n_test != 1 or n_valid != 1 or test_ts != last_ts))
   or (n < 3 and (n_test != 0 or n_valid != 0))
