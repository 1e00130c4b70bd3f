{#- The load time after which an incremental run takes inputs: the target's newest `loaded_at` less the lookback
    (`whoop_lookback_days`), so late rescoring and late-arriving neighbours are merged in. -#}
{% macro whoop_incremental_cutoff(loaded_at_column='loaded_at') -%}
    coalesce(
        (
            select {{ dbt.dateadd('day', -1 * var('whoop_lookback_days'), 'max(' ~ loaded_at_column ~ ')') }}
            from {{ this }}
        ),
        -- An empty table (the first runs found no data yet) takes everything.
        cast('1900-01-01' as {{ dbt.type_timestamp() }})
    )
{%- endmacro %}
