{#- A post-hook for fct_daily_health: the days it holds outside an athlete's span (first to last day of `span`,
    the dated cycles). The spine of days is rebuilt within the span, so when a deleted cycle was an athlete's first
    or last (or only) one, its day would otherwise stay behind. Keys are compared as text (athlete|date), which
    reads the same on every warehouse. -#}
{% macro whoop_delete_days_outside_span(span) -%}
    {%- set day_key = dbt.concat([
        'cast(user_id as ' ~ dbt.type_string() ~ ')', "'|'", 'cast(date_day as ' ~ dbt.type_string() ~ ')'
    ]) -%}
    {%- set stored_key = dbt.concat([
        'cast(stored.user_id as ' ~ dbt.type_string() ~ ')', "'|'",
        'cast(stored.date_day as ' ~ dbt.type_string() ~ ')'
    ]) -%}
    delete from {{ this }}
    where {{ day_key }} in (
        select {{ stored_key }}
        from {{ this }} as stored
        left join (
            select
                user_id,
                min(date_day) as first_day,
                max(date_day) as last_day
            from {{ span }}
            group by user_id
        ) as spans
            on stored.user_id = spans.user_id
        where spans.user_id is null or stored.date_day < spans.first_day or stored.date_day > spans.last_day
    )
{%- endmacro %}
