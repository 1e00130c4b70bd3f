{#- The warehouse's JSON type, as whoop_json returns it: JSON on DuckDB, VARIANT on Snowflake, JSONB on PostgreSQL. -#}
{% macro whoop_type_json() -%}
    {{ return(adapter.dispatch('whoop_type_json', 'whoop')()) }}
{%- endmacro %}

{% macro default__whoop_type_json() -%}
    json
{%- endmacro %}

{% macro snowflake__whoop_type_json() -%}
    variant
{%- endmacro %}

{% macro postgres__whoop_type_json() -%}
    jsonb
{%- endmacro %}
