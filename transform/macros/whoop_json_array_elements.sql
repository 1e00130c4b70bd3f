{#- One row per element of a JSON array column (the loaders store a Singer array property as JSON text or JSON,
    see _whoop__sources.yml), with the `columns` of `relation` beside it as `element` (JSON). A null or empty
    array gives no row. -#}
{% macro whoop_json_array_elements(relation, array_column, columns) -%}
    {{ return(adapter.dispatch('whoop_json_array_elements', 'whoop')(relation, array_column, columns)) }}
{%- endmacro %}

{% macro default__whoop_json_array_elements(relation, array_column, columns) -%}
    {{ exceptions.raise_compiler_error(
        "whoop_json_array_elements has no implementation for the " ~ adapter.type() ~ " adapter: add "
        ~ adapter.type() ~ "__whoop_json_array_elements to transform/macros/whoop_json_array_elements.sql") }}
{%- endmacro %}

{#- target-duckdb creates a JSON column for an array property. -#}
{% macro duckdb__whoop_json_array_elements(relation, array_column, columns) -%}
    select
        {%- for column in columns %}
        {{ relation }}.{{ column }},
        {%- endfor %}
        elements.element
    from {{ relation }},
        unnest(cast({{ relation }}.{{ array_column }} as json [])) as elements (element)
{%- endmacro %}

{#- target-snowflake (flattening on) stores the array as JSON text in a VARCHAR column. -#}
{% macro snowflake__whoop_json_array_elements(relation, array_column, columns) -%}
    select
        {%- for column in columns %}
        {{ relation }}.{{ column }},
        {%- endfor %}
        elements.value as element
    from {{ relation }},
        lateral flatten(input => parse_json({{ relation }}.{{ array_column }})) as elements
{%- endmacro %}

{#- target-postgres (flattening on) stores the array as JSON text in a text column; jsonb reads json too. -#}
{% macro postgres__whoop_json_array_elements(relation, array_column, columns) -%}
    select
        {%- for column in columns %}
        {{ relation }}.{{ column }},
        {%- endfor %}
        elements.element
    from {{ relation }}
    cross join lateral jsonb_array_elements(cast({{ relation }}.{{ array_column }} as jsonb)) as elements (element)
{%- endmacro %}
