{#- dbt-snowflake's MERGE names the source columns of its insert clause unqualified, which DuckDB (under fakesnow)
    finds ambiguous: qualify them with the source alias. Fails loudly if dbt-snowflake changes the clause's shape. -#}
{% macro snowflake__get_merge_sql(target, source_sql, unique_key, dest_columns, incremental_predicates) -%}
    {%- set dml = dbt.snowflake__get_merge_sql(target, source_sql, unique_key, dest_columns, incremental_predicates) -%}
    {%- if unique_key is none -%}
        {{ return(dml) }}
    {%- endif -%}
    {%- set column_names = dest_columns | map(attribute='name') | list -%}
    {%- set unqualified = 'values\n        (' ~ get_quoted_csv(column_names) ~ ')' -%}
    {%- set qualified = [] -%}
    {%- for name in column_names -%}
        {%- do qualified.append('DBT_INTERNAL_SOURCE.' ~ adapter.quote(name)) -%}
    {%- endfor -%}
    {%- if unqualified not in dml -%}
        {{ exceptions.raise_compiler_error("fakesnow merge workaround: dbt-snowflake's MERGE insert changed shape") }}
    {%- endif -%}
    {{ return(dml | replace(unqualified, 'values\n        (' ~ qualified | join(', ') ~ ')')) }}
{%- endmacro %}
