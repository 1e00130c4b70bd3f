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

{#- Wall-clock time where the user was: UTC shifted by the offset WHOOP recorded with the activity. -#}
{% macro whoop_local_timestamp(utc_column, offset_minutes_column) -%}
    {{ dbt.dateadd('minute', offset_minutes_column, utc_column) }}
{%- endmacro %}

{#- Duration columns arrive in milliseconds; analysts read hours (sleep) and minutes (heart-rate zones). -#}
{% macro whoop_milli_to(milli_column, unit) -%}
    {%- set divisors = {'hours': 3600000, 'minutes': 60000} -%}
    {%- if unit not in divisors -%}
        {{ exceptions.raise_compiler_error("whoop_milli_to: unit must be one of " ~ divisors.keys() | list ~ ", got " ~ unit) }}
    {%- endif -%}
    cast({{ milli_column }} as {{ whoop_type_double() }}) / {{ divisors[unit] }}
{%- endmacro %}
