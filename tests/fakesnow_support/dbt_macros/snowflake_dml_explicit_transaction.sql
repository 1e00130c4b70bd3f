{#- fakesnow records metadata in a second DuckDB database, and DuckDB lets one transaction write to one database
    only: run DML as one autocommitted statement instead of inside BEGIN ... COMMIT (a lone MERGE is atomic anyway). -#}
{% macro snowflake_dml_explicit_transaction(dml) -%}
    {{ return(dml) }}
{%- endmacro %}
