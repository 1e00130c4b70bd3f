{#- A staging model's `unmodelled_fields`: every field WHOOP sent that tap-whoop does not model, nested as sent, as
    JSON (tap-whoop/README.md, "Fields WHOOP adds"); NULL when there is none. `table` is the model's raw table in
    the `whoop` source. A raw table gets the column when the tap first writes to it after an upgrade, and profile
    and body measurement are re-read only every profile_refresh_days: until then the column is missing, and this
    is NULL. The raw table is looked up where the source says it lives (not through source(), which a unit test
    points at its fixture; unit tests get NULL). -#}
{% macro whoop_unmodelled_fields(table) -%}
    {%- set column = 'unmodelled_fields' -%}
    {%- set present = [] -%}
    {#- A unit test's graph has no sources (its inputs are fixtures): NULL there. -#}
    {%- if execute and graph.get('sources') -%}
        {%- set node = graph.sources.values() | selectattr('source_name', 'equalto', 'whoop')
            | selectattr('name', 'equalto', table) | first -%}
        {%- if node is not defined or node is none -%}
            {{ exceptions.raise_compiler_error(
                "whoop_unmodelled_fields: the whoop source has no table '" ~ table ~ "' (_whoop__sources.yml)") }}
        {%- endif -%}
        {%- set raw = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.identifier) -%}
        {%- for raw_column in (adapter.get_columns_in_relation(raw) if raw is not none else []) -%}
            {%- if raw_column.name | lower == column -%}{%- do present.append(raw_column) -%}{%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if present -%}
        {{ whoop_json(whoop_raw_column(column)) }}
    {%- else -%}
        cast(null as {{ whoop_type_json() }})
    {%- endif -%}
{%- endmacro %}
