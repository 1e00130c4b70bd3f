{#- Duration columns arrive in milliseconds; analysts read hours (sleep) and minutes (heart-rate zones). -#}
{% macro whoop_milli_to(milli_column, unit) -%}
    {%- set divisors = {'hours': 3600000, 'minutes': 60000} -%}
    {%- if unit not in divisors -%}
        {%- set message = "whoop_milli_to: unit must be one of " ~ divisors.keys() | list ~ ", got " ~ unit -%}
        {{ exceptions.raise_compiler_error(message) }}
    {%- endif -%}
    cast({{ milli_column }} as {{ whoop_type_double() }}) / {{ divisors[unit] }}
{%- endmacro %}
