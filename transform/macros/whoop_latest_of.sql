{#- greatest() over load times where a missing input must not blank the result: DuckDB's greatest skips NULLs,
    Snowflake's returns NULL, so NULLs are replaced by the first (always present) argument. -#}
{% macro whoop_latest_of(columns) -%}
    greatest(
    {%- for column in columns %}
        {% if loop.first %}{{ column }}{% else %}coalesce({{ column }}, {{ columns[0] }}){% endif %}
        {{- "," if not loop.last }}
    {%- endfor %}
    )
{%- endmacro %}
