{#- A raw column whose name is an SQL keyword ("start", "end") must be quoted, and quoting makes Snowflake
    case-sensitive: target-snowflake creates upper-case columns, target-duckdb lower-case ones. -#}
{% macro whoop_raw_column(name) -%}
    {{ return(adapter.dispatch('whoop_raw_column', 'whoop')(name)) }}
{%- endmacro %}

{% macro default__whoop_raw_column(name) -%}
    {{ adapter.quote(name) }}
{%- endmacro %}

{% macro snowflake__whoop_raw_column(name) -%}
    {{ adapter.quote(name | upper) }}
{%- endmacro %}
