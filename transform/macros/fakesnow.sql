{#-
    Test-only compatibility with fakesnow, the Snowflake wire-protocol server over DuckDB that stands in for Snowflake
    in the offline tests. Every override below is active only when WHOOP_FAKESNOW=1 is set (the tests set it) on a
    snowflake target; otherwise each one returns dbt-snowflake's own macro unchanged, so real Snowflake receives the
    exact SQL dbt-snowflake generates (tests/transform/test_fakesnow_gate.py compiles both ways to prove it).

    fakesnow gaps worked around:
    - temporary tables and views must live in DuckDB's "temp" catalog, but dbt-snowflake qualifies them with the
      target database: use transient tables / plain views instead (dropped by dbt after use, as before);
    - the MERGE insert clause names source columns unqualified, which DuckDB finds ambiguous: qualify them;
    - fakesnow records metadata in a second DuckDB database, and DuckDB lets one transaction write to one database
      only, so DML runs as a single autocommitted statement instead of inside BEGIN ... COMMIT (a lone MERGE is
      atomic either way).
-#}

{% macro whoop_on_fakesnow() -%}
    {{ return(target.type == 'snowflake' and env_var('WHOOP_FAKESNOW', '') == '1') }}
{%- endmacro %}


{% macro snowflake__create_table_temporary_sql(relation, compiled_code) -%}
    {%- if whoop_on_fakesnow() -%}
        {{ dbt.snowflake__create_table_transient_sql(relation, compiled_code) }}
    {%- else -%}
        {{ dbt.snowflake__create_table_temporary_sql(relation, compiled_code) }}
    {%- endif -%}
{%- endmacro %}


{% macro snowflake__create_view_as_with_temp_flag(relation, sql, is_temporary=False) -%}
    {{ return(dbt.snowflake__create_view_as_with_temp_flag(relation, sql, is_temporary and not whoop_on_fakesnow())) }}
{%- endmacro %}


{% macro snowflake__get_merge_sql(target, source_sql, unique_key, dest_columns, incremental_predicates) -%}
    {%- set dml = dbt.snowflake__get_merge_sql(target, source_sql, unique_key, dest_columns, incremental_predicates) -%}
    {%- if not whoop_on_fakesnow() or unique_key is none -%}
        {{ return(dml) }}
    {%- endif -%}
    {%- set column_names = dest_columns | map(attribute='name') | list -%}
    {%- set unqualified = 'values\n        (' ~ get_quoted_csv(column_names) ~ ')' -%}
    {%- set qualified = [] -%}
    {%- for name in column_names -%}
        {%- do qualified.append('DBT_INTERNAL_SOURCE.' ~ adapter.quote(name)) -%}
    {%- endfor -%}
    {%- if unqualified not in dml -%}
        {{ exceptions.raise_compiler_error("fakesnow merge workaround: dbt-snowflake's MERGE insert clause changed shape") }}
    {%- endif -%}
    {{ return(dml | replace(unqualified, 'values\n        (' ~ qualified | join(', ') ~ ')')) }}
{%- endmacro %}


{% macro snowflake_dml_explicit_transaction(dml) -%}
    {%- if whoop_on_fakesnow() -%}
        {{ return(dml) }}
    {%- endif -%}
    {{ return(dbt.snowflake_dml_explicit_transaction(dml)) }}
{%- endmacro %}
