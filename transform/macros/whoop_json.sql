{#- JSON text as the warehouse's JSON type: JSON on DuckDB, VARIANT on Snowflake (parse_json), JSONB on PostgreSQL
    (comparable, so DISTINCT ON and GROUP BY take it). NULL stays NULL; text that is not JSON fails the model.
    For a text column: a column the loader already stores as JSON (an array or object in the stream's schema)
    needs none of this. -#}
{% macro whoop_json(text) -%}
    {{ return(adapter.dispatch('whoop_json', 'whoop')(text)) }}
{%- endmacro %}

{% macro default__whoop_json(text) -%}
    cast({{ text }} as {{ whoop_type_json() }})
{%- endmacro %}

{% macro snowflake__whoop_json(text) -%}
    parse_json({{ text }})
{%- endmacro %}
