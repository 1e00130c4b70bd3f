{#- Incremental facts carry `loaded_at`: the latest load time of any raw row they were built from. A run rebuilds
    every row whose inputs were loaded after the target's newest `loaded_at` minus the lookback window, so late
    rescoring and late-arriving neighbours (a cycle loaded after its sleep) are merged in. -#}
{% macro whoop_is_new_since_last_run(loaded_at_column='loaded_at') -%}
    {%- if is_incremental() -%}
        {{ loaded_at_column }} > coalesce(
            (
                select {{ dbt.dateadd('day', -1 * var('whoop_lookback_days'), 'max(' ~ loaded_at_column ~ ')') }}
                from {{ this }}
            ),
            -- An empty table (the first runs found no data yet) takes everything.
            cast('1900-01-01' as {{ dbt.type_timestamp() }})
        )
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}
