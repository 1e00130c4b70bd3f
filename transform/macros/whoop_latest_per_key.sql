{#- The dedup rule for staging: one row per key, the newest WHOOP `updated_at` winning; ties (the same version
    loaded twice) go to the latest load. Raw may hold a key any number of times: loaders append or upsert. -#}
{% macro whoop_latest_per_key(relation, key, order_by=['updated_at', 'loaded_at', 'extracted_at']) -%}
    {{ return(adapter.dispatch('whoop_latest_per_key', 'whoop')(relation, key, order_by)) }}
{%- endmacro %}

{% macro default__whoop_latest_per_key(relation, key, order_by) -%}
    select *
    from {{ relation }}
    qualify row_number() over (
        partition by {{ key }}
        order by
        {%- for column in order_by %}
            {{ column }} desc nulls last{{ "," if not loop.last }}
        {%- endfor %}
    ) = 1
{%- endmacro %}

{#- PostgreSQL has no QUALIFY; DISTINCT ON keeps the first row of each key in the same order. -#}
{% macro postgres__whoop_latest_per_key(relation, key, order_by) -%}
    select distinct on ({{ key }}) *
    from {{ relation }}
    order by
        {{ key }},
    {%- for column in order_by %}
        {{ column }} desc nulls last{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}
