{#- Values outside [min_value, max_value] (inclusive; either bound optional). NULLs pass: not_null says otherwise. -#}
{% test in_range(model, column_name, min_value=none, max_value=none) %}
{%- if min_value is none and max_value is none -%}
    {{ exceptions.raise_compiler_error('in_range needs min_value, max_value or both') }}
{%- endif %}

select {{ column_name }} as out_of_range_value
from {{ model }}
where
    {%- if min_value is not none %} {{ column_name }} < {{ min_value }}{% endif %}
    {%- if min_value is not none and max_value is not none %} or{% endif %}
    {%- if max_value is not none %} {{ column_name }} > {{ max_value }}{% endif %}

{% endtest %}
