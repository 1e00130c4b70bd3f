{{
    config(
        materialized='incremental',
        unique_key='sleep_id',
        post_hook="{{ whoop_delete_deleted('sleep_id', ['sleeps'], ref('stg_whoop__sleeps')) }}",
    )
}}

with

sleeps as (

    select * from {{ ref('stg_whoop__sleeps') }}

),

cycle_days as (

    select
        cycle_id,
        date_day,
        loaded_at
    from {{ ref('int_cycles_dated') }}

),

joined as (

    select
        sleeps.sleep_id,
        sleeps.cycle_id,
        sleeps.user_id,
        -- The day of the sleep's cycle (the day its main sleep ended); before that cycle is loaded, the local
        -- date the sleep ended.
        coalesce(cycle_days.date_day, sleeps.end_date_local) as date_day,
        sleeps.is_nap,
        sleeps.score_state,
        sleeps.start_at,
        sleeps.end_at,
        sleeps.start_at_local,
        sleeps.end_at_local,
        sleeps.timezone_offset,
        sleeps.total_in_bed_time_hours,
        sleeps.total_awake_time_hours,
        sleeps.total_no_data_time_hours,
        sleeps.total_light_sleep_time_hours,
        sleeps.total_slow_wave_sleep_time_hours,
        sleeps.total_rem_sleep_time_hours,
        sleeps.total_sleep_time_hours,
        sleeps.sleep_needed_hours,
        sleeps.total_sleep_time_hours - sleeps.sleep_needed_hours as sleep_balance_hours,
        sleeps.sleep_cycle_count,
        sleeps.disturbance_count,
        sleeps.respiratory_rate,
        sleeps.sleep_performance_percentage,
        sleeps.sleep_consistency_percentage,
        sleeps.sleep_efficiency_percentage,
        sleeps.updated_at,
        {{ whoop_latest_of(['sleeps.loaded_at', 'cycle_days.loaded_at']) }} as loaded_at
    from sleeps
    left join cycle_days
        on sleeps.cycle_id = cycle_days.cycle_id

),

new_since_last_run as (

    select * from joined
    where {{ whoop_is_new_since_last_run() }}

)

select * from new_since_last_run
