{#- Incremental facts carry `loaded_at`: the latest load time of any raw row they were built from. A run rebuilds
    every row whose inputs were loaded after the cutoff (the target's newest `loaded_at` minus the lookback
    window), so late rescoring and late-arriving neighbours (a cycle loaded after its sleep) are merged in; and
    every row of an athlete with a deletion since then (see whoop_deleted_users_since_last_run). -#}
{% macro whoop_is_new_since_last_run(loaded_at_column='loaded_at', user_id_column='user_id') -%}
    {#- Called here, outside the branch, so that dbt records the dependency when it parses the model. -#}
    {%- do ref('stg_whoop__deleted_records') -%}
    {%- if is_incremental() -%}
        (
            {{ loaded_at_column }} > {{ whoop_incremental_cutoff(loaded_at_column) }}
            or {{ user_id_column }} in ({{ whoop_deleted_users_since_last_run() }})
        )
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}
