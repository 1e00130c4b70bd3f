{{
    config(
        materialized='incremental',
        unique_key='cycle_id',
        post_hook="{{ whoop_delete_deleted('cycle_id', ['cycles'], ref('int_cycles_joined')) }}",
    )
}}

with

cycles as (

    select * from {{ ref('int_cycles_joined') }}

),

{% if is_incremental() %}

changed as (

    select
        cycle_id,
        user_id,
        date_day
    from cycles
    where {{ whoop_is_new_since_last_run() }}

),

touched_days as (

    -- A cycle arriving on, or leaving, a date renumbers the other cycles of that date (day_cycle_number).
    select
        user_id,
        date_day
    from changed
    union distinct
    select
        stored.user_id,
        stored.date_day
    from {{ this }} as stored
    inner join changed
        on stored.cycle_id = changed.cycle_id

),

rebuilt as (

    select cycles.*
    from cycles
    left join changed
        on cycles.cycle_id = changed.cycle_id
    left join touched_days
        on cycles.user_id = touched_days.user_id
        and cycles.date_day = touched_days.date_day
    where changed.cycle_id is not null or touched_days.date_day is not null

)

{% else %}

rebuilt as (

    select * from cycles

)

{% endif %}

select * from rebuilt
