{#- An ISO 8601 text timestamp with its offset ('2026-03-01T23:10:00Z', '...+01:00') as a UTC timestamp without
    zone, as every other time in the warehouse, whatever the session's zone. -#}
{% macro whoop_utc_timestamp(text) -%}
    {{ return(adapter.dispatch('whoop_utc_timestamp', 'whoop')(text)) }}
{%- endmacro %}

{#- DuckDB and PostgreSQL alike. -#}
{% macro default__whoop_utc_timestamp(text) -%}
    cast(cast({{ text }} as timestamptz) at time zone 'UTC' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro snowflake__whoop_utc_timestamp(text) -%}
    cast(convert_timezone('UTC', cast({{ text }} as timestamp_tz)) as {{ dbt.type_timestamp() }})
{%- endmacro %}
