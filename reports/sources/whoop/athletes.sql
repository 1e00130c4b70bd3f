-- One row per athlete (marts.dim_user): the name people recognise; no e-mail address on the site.
select
    user_id,
    trim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) as name
from marts.dim_user
