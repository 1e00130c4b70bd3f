{#- A staging model's `unmodelled_fields`: every field WHOOP sent that tap-whoop does not model, nested as sent, as
    JSON (tap-whoop/README.md, "Fields WHOOP adds"); NULL when there is none. `relation` is the model's raw table.
    A raw table gets the column when the tap first writes to it after an upgrade, and profile and body measurement
    are re-read only every profile_refresh_days: until then the column is missing, and this is NULL. -#}
{% macro whoop_unmodelled_fields(relation) -%}
    {%- set column = 'unmodelled_fields' -%}
    {%- set present = [] -%}
    {%- if execute -%}
        {%- for raw_column in adapter.get_columns_in_relation(relation) -%}
            {%- if raw_column.name | lower == column -%}{%- do present.append(raw_column) -%}{%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if present -%}
        {{ whoop_json(whoop_raw_column(column)) }}
    {%- else -%}
        cast(null as {{ whoop_type_json() }})
    {%- endif -%}
{%- endmacro %}
