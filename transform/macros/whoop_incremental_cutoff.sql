{#- The load time after which an incremental run takes inputs: the target's newest `loaded_at` less
    `whoop_reprocess_days`, so late rescoring and late-arriving neighbours are merged in. (Not the tap's
    `lookback_days`, which is how far back in WHOOP's time each extract asks again.) -#}
{% macro whoop_incremental_cutoff(loaded_at_column='loaded_at') -%}
    {%- if var('whoop_lookback_days', none) is not none -%}
        {{ exceptions.raise_compiler_error(
            "The dbt var whoop_lookback_days is now whoop_reprocess_days (days of loaded data an incremental "
            ~ "run merges again); rename it where you set it (--vars, dbt_project.yml or meltano.yml).") }}
    {%- endif %}
    coalesce(
        (
            select {{ dbt.dateadd('day', -1 * var('whoop_reprocess_days'), 'max(' ~ loaded_at_column ~ ')') }}
            from {{ this }}
        ),
        -- An empty table (the first runs found no data yet) takes everything.
        cast('1900-01-01' as {{ dbt.type_timestamp() }})
    )
{%- endmacro %}
