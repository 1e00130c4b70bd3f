{#- A post-hook for an incremental fact built from `live` alone: its rows whose key `live` no longer holds (a
    deleted record, or one whose input emptied). An incremental run only writes the rows it selects, so such a row
    would otherwise stay for good. -#}
{% macro whoop_delete_missing(key_column, live) -%}
    delete from {{ this }}
    where {{ key_column }} not in (
        select {{ key_column }}
        from {{ live }}
        where {{ key_column }} is not null
    )
{%- endmacro %}
