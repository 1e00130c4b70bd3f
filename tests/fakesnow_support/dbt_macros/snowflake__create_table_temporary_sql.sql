{#- fakesnow keeps temporary tables in DuckDB's "temp" catalog, but dbt-snowflake qualifies them with the target
    database: build a transient table instead (dbt drops it after use, as it would the temporary one). -#}
{% macro snowflake__create_table_temporary_sql(relation, compiled_code) -%}
    {{ dbt.snowflake__create_table_transient_sql(relation, compiled_code) }}
{%- endmacro %}
