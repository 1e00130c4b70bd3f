{{
    config(
        materialized='incremental',
        unique_key=['user_id', 'date_day'],
        post_hook="{{ whoop_delete_days_outside_span(ref('int_cycles_joined')) }}",
    )
}}

{#- The deletions are read only on incremental runs; referenced here so that dbt knows the dependency. -#}
{%- do ref('stg_whoop__deleted_records') -%}

{#- The longest trend looks this many days back (the 30-day baselines end the day before), so a change on one day
    reaches this many following days. -#}
{%- set reach_days = 30 -%}
{%- set by_day = 'partition by user_id order by date_day' -%}

with

cycles as (

    select * from {{ ref('int_cycles_joined') }}

),

calendar as (

    select date_day from {{ ref('dim_date') }}

),

athletes as (

    select
        user_id,
        min(date_day) as first_day,
        max(date_day) as last_day
    from cycles
    group by user_id

),

spine as (

    -- Every day from an athlete's first to last day, so a day without data is a row, not a hole.
    select
        athletes.user_id,
        calendar.date_day
    from athletes
    inner join calendar
        on calendar.date_day between athletes.first_day and athletes.last_day

),

day_inputs as (

    select
        user_id,
        date_day,
        count(*) as cycle_count,
        max(loaded_at) as day_loaded_at
    from cycles
    group by user_id, date_day

),

day_cycles as (

    select * from cycles
    where day_cycle_number = 1

),

days as (

    select
        spine.user_id,
        spine.date_day,
        day_cycles.cycle_id is not null as has_cycle,
        coalesce(day_inputs.cycle_count, 0) as cycle_count,
        day_cycles.cycle_id,
        day_cycles.wake_at_local,
        day_cycles.is_current,
        day_cycles.cycle_score_state,
        day_cycles.strain,
        day_cycles.kilojoule,
        day_cycles.average_heart_rate,
        day_cycles.max_heart_rate,
        day_cycles.recovery_score_state,
        day_cycles.recovery_score,
        day_cycles.recovery_zone,
        day_cycles.hrv_rmssd_milli,
        day_cycles.resting_heart_rate,
        day_cycles.spo2_percentage,
        day_cycles.skin_temp_celsius,
        day_cycles.user_calibrating,
        day_cycles.main_sleep_id,
        day_cycles.sleep_performance_percentage,
        day_cycles.sleep_efficiency_percentage,
        day_cycles.sleep_consistency_percentage,
        day_cycles.respiratory_rate,
        day_cycles.total_in_bed_time_hours,
        day_cycles.hours_asleep,
        day_cycles.hours_needed,
        day_cycles.sleep_balance_hours,
        day_cycles.light_sleep_hours,
        day_cycles.slow_wave_sleep_hours,
        day_cycles.rem_sleep_hours,
        day_cycles.awake_hours,
        coalesce(day_cycles.nap_count, 0) as nap_count,
        coalesce(day_cycles.nap_hours, 0) as nap_hours,
        coalesce(day_cycles.workout_count, 0) as workout_count,
        coalesce(day_cycles.workout_strain, 0) as workout_strain,
        coalesce(day_cycles.workout_minutes, 0) as workout_minutes,
        -- Sleep debt counts each night's shortfall; a night slept longer than needed repays nothing.
        case
            when day_cycles.hours_needed is null or day_cycles.hours_asleep is null then null
            when day_cycles.hours_needed > day_cycles.hours_asleep
                then day_cycles.hours_needed - day_cycles.hours_asleep
            else 0
        end as sleep_shortfall_hours,
        day_inputs.day_loaded_at
    from spine
    left join day_cycles
        on spine.user_id = day_cycles.user_id
        and spine.date_day = day_cycles.date_day
    left join day_inputs
        on spine.user_id = day_inputs.user_id
        and spine.date_day = day_inputs.date_day

),

trends as (

    -- The spine has one row per day, so N rows are N days. Baselines are the days before (what today is compared
    -- with); the 7-day sleep debt and strain include today.
    select
        *,
        avg(hrv_rmssd_milli) over ({{ by_day }} rows between 7 preceding and 1 preceding) as hrv_baseline_7d,
        avg(hrv_rmssd_milli) over ({{ by_day }} rows between 30 preceding and 1 preceding) as hrv_baseline_30d,
        stddev_samp(hrv_rmssd_milli) over ({{ by_day }} rows between 30 preceding and 1 preceding)
            as hrv_stddev_30d,
        avg(resting_heart_rate) over ({{ by_day }} rows between 7 preceding and 1 preceding) as rhr_baseline_7d,
        avg(resting_heart_rate) over ({{ by_day }} rows between 30 preceding and 1 preceding) as rhr_baseline_30d,
        stddev_samp(resting_heart_rate) over ({{ by_day }} rows between 30 preceding and 1 preceding)
            as rhr_stddev_30d,
        sum(sleep_shortfall_hours) over ({{ by_day }} rows between 6 preceding and current row)
            as sleep_debt_7d_hours,
        avg(strain) over ({{ by_day }} rows between 6 preceding and current row) as strain_avg_7d,
        max(day_loaded_at) over ({{ by_day }} rows between {{ reach_days }} preceding and current row) as loaded_at
    from days

),

final as (

    select
        user_id,
        date_day,
        has_cycle,
        cycle_count,
        cycle_id,
        wake_at_local,
        is_current,
        cycle_score_state,
        strain,
        strain_avg_7d,
        kilojoule,
        average_heart_rate,
        max_heart_rate,
        recovery_score_state,
        recovery_score,
        recovery_zone,
        hrv_rmssd_milli,
        hrv_baseline_7d,
        hrv_baseline_30d,
        hrv_stddev_30d,
        hrv_rmssd_milli - hrv_baseline_7d as hrv_deviation_7d,
        hrv_rmssd_milli - hrv_baseline_30d as hrv_deviation_30d,
        resting_heart_rate,
        rhr_baseline_7d,
        rhr_baseline_30d,
        rhr_stddev_30d,
        resting_heart_rate - rhr_baseline_7d as rhr_deviation_7d,
        resting_heart_rate - rhr_baseline_30d as rhr_deviation_30d,
        spo2_percentage,
        skin_temp_celsius,
        user_calibrating,
        main_sleep_id,
        sleep_performance_percentage,
        sleep_efficiency_percentage,
        sleep_consistency_percentage,
        respiratory_rate,
        total_in_bed_time_hours,
        hours_asleep,
        hours_needed,
        sleep_balance_hours,
        sleep_shortfall_hours,
        sleep_debt_7d_hours,
        light_sleep_hours,
        slow_wave_sleep_hours,
        rem_sleep_hours,
        awake_hours,
        nap_count,
        nap_hours,
        workout_count,
        workout_strain,
        workout_minutes,
        loaded_at
    from trends

),

{% if is_incremental() %}

stored as (

    select
        user_id,
        date_day,
        cycle_id,
        cycle_count
    from {{ this }}

),

touched as (

    -- A day is touched when anything it was built from was loaded since the last run, or when what the table
    -- holds for it no longer matches (a new day, a cycle that moved to another date); its trends reach the next
    -- {{ reach_days }} days. Every day of an athlete with a deletion since the last run is touched: a deleted
    -- workout or sleep no longer says which day counted it.
    select
        days.user_id,
        days.date_day,
        case
            when days.day_loaded_at > {{ whoop_incremental_cutoff() }} then 1
            when days.user_id in ({{ whoop_deleted_users_since_last_run() }}) then 1
            when stored.date_day is null then 1
            when days.cycle_id is distinct from stored.cycle_id then 1
            when days.cycle_count != stored.cycle_count then 1
            else 0
        end as is_touched
    from days
    left join stored
        on days.user_id = stored.user_id
        and days.date_day = stored.date_day

),

reached as (

    select
        user_id,
        date_day,
        max(is_touched) over ({{ by_day }} rows between {{ reach_days }} preceding and current row) as is_reached
    from touched

),

new_since_last_run as (

    select final.*
    from final
    inner join reached
        on final.user_id = reached.user_id
        and final.date_day = reached.date_day
    where reached.is_reached = 1

)

{% else %}

new_since_last_run as (

    select * from final

)

{% endif %}

select * from new_since_last_run
