{#- A key of a JSON object (an element of whoop_json_array_elements) as text; null when the key is absent or its
    value is null. Cast it to the column's type. -#}
{% macro whoop_json_text(element, key) -%}
    {{ return(adapter.dispatch('whoop_json_text', 'whoop')(element, key)) }}
{%- endmacro %}

{#- DuckDB's JSON and PostgreSQL's jsonb share the operator. -#}
{% macro default__whoop_json_text(element, key) -%}
    ({{ element }} ->> '{{ key }}')
{%- endmacro %}

{% macro snowflake__whoop_json_text(element, key) -%}
    cast({{ element }}['{{ key }}'] as varchar)
{%- endmacro %}
