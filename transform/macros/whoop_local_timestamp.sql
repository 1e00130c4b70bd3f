{#- Wall-clock time where the user was: UTC shifted by the offset WHOOP recorded with the activity. -#}
{% macro whoop_local_timestamp(utc_column, offset_minutes_column) -%}
    {{ dbt.dateadd('minute', offset_minutes_column, utc_column) }}
{%- endmacro %}
