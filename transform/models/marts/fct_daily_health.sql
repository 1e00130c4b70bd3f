{{
    config(
        materialized='incremental',
        unique_key='cycle_id',
    )
}}

with

cycles as (

    select * from {{ ref('stg_whoop__cycles') }}

),

recoveries as (

    select * from {{ ref('stg_whoop__recoveries') }}

),

sleeps as (

    select * from {{ ref('int_sleeps_main_by_cycle') }}

),

workouts as (

    select
        cycle_id,
        count(*) as workout_count,
        sum(strain) as workout_strain,
        sum(duration_minutes) as workout_minutes,
        max(loaded_at) as loaded_at
    from {{ ref('int_workouts_by_cycle') }}
    where cycle_id is not null
    group by cycle_id

),

daily as (

    select
        cycles.cycle_id,
        cycles.user_id,
        cycles.cycle_date as date_day,
        cycles.start_at as cycle_start_at,
        cycles.end_at as cycle_end_at,
        cycles.is_current,
        cycles.score_state as cycle_score_state,

        cycles.strain,
        cycles.kilojoule,
        cycles.average_heart_rate,
        cycles.max_heart_rate,

        recoveries.score_state as recovery_score_state,
        recoveries.recovery_score,
        recoveries.hrv_rmssd_milli,
        recoveries.resting_heart_rate,
        recoveries.spo2_percentage,
        recoveries.skin_temp_celsius,
        recoveries.user_calibrating,

        sleeps.main_sleep_id,
        sleeps.sleep_performance_percentage,
        sleeps.sleep_efficiency_percentage,
        sleeps.sleep_consistency_percentage,
        sleeps.respiratory_rate,
        sleeps.total_in_bed_time_hours,
        sleeps.total_sleep_time_hours as hours_asleep,
        sleeps.sleep_needed_hours as hours_needed,
        sleeps.sleep_balance_hours,
        coalesce(sleeps.nap_count, 0) as nap_count,
        coalesce(sleeps.nap_sleep_hours, 0) as nap_hours,

        coalesce(workouts.workout_count, 0) as workout_count,
        coalesce(workouts.workout_strain, 0) as workout_strain,
        coalesce(workouts.workout_minutes, 0) as workout_minutes,

        {{ whoop_latest_of(['cycles.loaded_at', 'recoveries.loaded_at', 'sleeps.loaded_at', 'workouts.loaded_at']) }}
            as loaded_at
    from cycles
    left join recoveries
        on cycles.cycle_id = recoveries.cycle_id
    left join sleeps
        on cycles.cycle_id = sleeps.cycle_id
    left join workouts
        on cycles.cycle_id = workouts.cycle_id

),

new_since_last_run as (

    select * from daily
    where {{ whoop_is_new_since_last_run() }}

)

select * from new_since_last_run
