{{
    config(
        materialized='incremental',
        unique_key='workout_id',
        post_hook="{{ whoop_delete_deleted('workout_id', ['workouts'], ref('int_workouts_by_cycle')) }}",
    )
}}

with

workouts as (

    select * from {{ ref('int_workouts_by_cycle') }}

),

final as (

    select
        workout_id,
        cycle_id,
        user_id,
        date_day,
        sport_id,
        sport_name,
        score_state,
        start_at,
        end_at,
        start_at_local,
        end_at_local,
        timezone_offset,
        duration_minutes,
        strain,
        kilojoule,
        average_heart_rate,
        max_heart_rate,
        percent_recorded,
        distance_meter,
        altitude_gain_meter,
        altitude_change_meter,
        zone_zero_minutes,
        zone_one_minutes,
        zone_two_minutes,
        zone_three_minutes,
        zone_four_minutes,
        zone_five_minutes,
        updated_at,
        {{ whoop_latest_of(['loaded_at', 'cycle_loaded_at']) }} as loaded_at
    from workouts

),

new_since_last_run as (

    select * from final
    where {{ whoop_is_new_since_last_run() }}

)

select * from new_since_last_run
