{#- The deletions that remove a staging row of these streams (tap-whoop's `deleted_records`, from reconciliation
    and WHOOP's webhooks), one row per user and record: the latest. `record_id` is a string: a sleep's or workout's
    UUID, a recovery's sleep UUID, a cycle's id. A recovery goes with its sleep, so recoveries pass both streams. -#}
{% macro whoop_deletions_of(streams) -%}
    select
        user_id,
        record_id,
        max(deleted_at) as deleted_at
    from {{ ref('stg_whoop__deleted_records') }}
    where stream in ({% for stream in streams %}'{{ stream }}'{{ ", " if not loop.last }}{% endfor %})
    group by user_id, record_id
{%- endmacro %}
