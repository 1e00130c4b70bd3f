{#- The athletes with a deletion loaded since the last run (past the same cutoff as every other input). A deleted
    record changes what it was counted in (a day's workouts, a cycle's main sleep, which cycle a day belongs to)
    but no longer says where it was, so their incremental facts are rebuilt whole: one athlete's history, only on
    the runs that bring a deletion. -#}
{% macro whoop_deleted_users_since_last_run() -%}
    select user_id
    from {{ ref('stg_whoop__deleted_records') }}
    where loaded_at > {{ whoop_incremental_cutoff() }}
{%- endmacro %}
