{#- Incremental facts carry `loaded_at`: the latest load time of any raw row they were built from. A run rebuilds
    every row whose inputs were loaded after the cutoff (the target's newest `loaded_at` minus the lookback
    window), so late rescoring and late-arriving neighbours (a cycle loaded after its sleep) are merged in. -#}
{% macro whoop_is_new_since_last_run(loaded_at_column='loaded_at') -%}
    {%- if is_incremental() -%}
        {{ loaded_at_column }} > {{ whoop_incremental_cutoff(loaded_at_column) }}
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}
