{#- WHOOP reports times in UTC plus the user's offset as a Time Zone Designator: '+hh:mm', '-hh:mm' or 'Z'. -#}
{% macro whoop_utc_offset_minutes(offset_column) -%}
    case
        when {{ offset_column }} = 'Z' then 0
        else
            (case when substr({{ offset_column }}, 1, 1) = '-' then -1 else 1 end)
            * (
                cast(substr({{ offset_column }}, 2, 2) as {{ dbt.type_int() }}) * 60
                + cast(substr({{ offset_column }}, 5, 2) as {{ dbt.type_int() }})
            )
    end
{%- endmacro %}
