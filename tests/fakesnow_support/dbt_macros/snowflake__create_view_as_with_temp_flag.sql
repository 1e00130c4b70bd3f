{#- Temporary views hit the same "temp" catalog gap as temporary tables: create a plain view instead (dbt drops it
    after use). -#}
{% macro snowflake__create_view_as_with_temp_flag(relation, sql, is_temporary=False) -%}
    {{ return(dbt.snowflake__create_view_as_with_temp_flag(relation, sql, False)) }}
{%- endmacro %}
