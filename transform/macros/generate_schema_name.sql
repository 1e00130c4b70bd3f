{#- Models go to the schema they name (staging, marts) rather than dbt's default "<target schema>_<custom>", so the
    warehouse reads RAW -> STAGING -> MARTS in every environment. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
