{#- WHOOP's measurements are JSON numbers: keep them 64-bit. dbt.type_float() is `float`, which DuckDB reads as
    32-bit REAL (84.3376 kg would become 84.337601); `double precision` is 64-bit on DuckDB and Snowflake alike. -#}
{% macro whoop_type_double() -%}
    double precision
{%- endmacro %}
