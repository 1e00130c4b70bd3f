{#- A post-hook for an incremental fact keyed by one record: its rows for records deleted at WHOOP (tap-whoop's
    deleted_records) that are no longer in `live`, the model's own input. An incremental run only writes the rows
    it selects, so a row whose record left staging would otherwise stay for good; a record WHOOP served again is
    in `live` and stays. -#}
{% macro whoop_delete_deleted(key_column, streams, live) -%}
    delete from {{ this }}
    where
        cast({{ key_column }} as {{ dbt.type_string() }}) in (
            select record_id
            from {{ ref('stg_whoop__deleted_records') }}
            where stream in ({% for stream in streams %}'{{ stream }}'{{ ", " if not loop.last }}{% endfor %})
        )
        and {{ key_column }} not in (
            select {{ key_column }}
            from {{ live }}
            where {{ key_column }} is not null
        )
{%- endmacro %}
