-- Everything known about one cycle: its strain, the recovery it began with, its main sleep against need, naps,
-- workouts, and the day it is dated to. fct_cycles stores it; fct_daily_health lays it on the calendar.
with

cycles as (

    select * from {{ ref('stg_whoop__cycles') }}

),

cycle_days as (

    select * from {{ ref('int_cycles_dated') }}

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

)
,

joined as (

    select
        cycles.cycle_id,
        cycles.user_id,
        cycle_days.date_day,
        cycle_days.day_cycle_number,
        cycle_days.wake_at_local,
        cycles.start_at as cycle_start_at,
        cycles.end_at as cycle_end_at,
        cycles.start_at_local as cycle_start_at_local,
        cycles.cycle_date as cycle_start_date_local,
        cycles.timezone_offset,
        cycles.is_current,
        cycles.score_state as cycle_score_state,

        cycles.strain,
        cycles.kilojoule,
        cycles.average_heart_rate,
        cycles.max_heart_rate,

        recoveries.score_state as recovery_score_state,
        recoveries.recovery_score,
        -- WHOOP's colours: green from 67 %, red up to 33 %, yellow between.
        case
            when recoveries.recovery_score >= 67 then 'green'
            when recoveries.recovery_score > 33 then 'yellow'
            when recoveries.recovery_score >= 0 then 'red'
        end as recovery_zone,
        recoveries.hrv_rmssd_milli,
        recoveries.resting_heart_rate,
        recoveries.spo2_percentage,
        recoveries.skin_temp_celsius,
        recoveries.user_calibrating,

        sleeps.main_sleep_id,
        sleeps.main_sleep_score_state,
        sleeps.main_sleep_start_at,
        sleeps.main_sleep_end_at,
        sleeps.sleep_performance_percentage,
        sleeps.sleep_efficiency_percentage,
        sleeps.sleep_consistency_percentage,
        sleeps.respiratory_rate,
        sleeps.disturbance_count,
        sleeps.total_in_bed_time_hours,
        sleeps.total_sleep_time_hours as hours_asleep,
        sleeps.sleep_needed_hours as hours_needed,
        sleeps.sleep_balance_hours,
        sleeps.total_light_sleep_time_hours as light_sleep_hours,
        sleeps.total_slow_wave_sleep_time_hours as slow_wave_sleep_hours,
        sleeps.total_rem_sleep_time_hours as rem_sleep_hours,
        sleeps.total_awake_time_hours as awake_hours,
        coalesce(sleeps.nap_count, 0) as nap_count,
        coalesce(sleeps.nap_sleep_hours, 0) as nap_hours,

        coalesce(workouts.workout_count, 0) as workout_count,
        coalesce(workouts.workout_strain, 0) as workout_strain,
        coalesce(workouts.workout_minutes, 0) as workout_minutes,

        {{ whoop_latest_of([
            'cycles.loaded_at', 'cycle_days.loaded_at', 'recoveries.loaded_at', 'sleeps.loaded_at', 'workouts.loaded_at'
        ]) }} as loaded_at
    from cycles
    inner join cycle_days
        on cycles.cycle_id = cycle_days.cycle_id
    left join recoveries
        on cycles.cycle_id = recoveries.cycle_id
    left join sleeps
        on cycles.cycle_id = sleeps.cycle_id
    left join workouts
        on cycles.cycle_id = workouts.cycle_id

)

select * from joined
