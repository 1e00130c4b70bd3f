-- The date rule: the day a cycle belongs to is the one WHOOP's app shows its recovery on.
with

cycles as (

    select
        cycle_id,
        user_id,
        start_at,
        start_at_local,
        loaded_at
    from {{ ref('stg_whoop__cycles') }}

),

sleeps as (

    select
        cycle_id,
        main_sleep_end_at,
        main_sleep_timezone_offset_minutes,
        loaded_at
    from {{ ref('int_sleeps_main_by_cycle') }}

),

recoveries as (

    -- The recovery names the main sleep, so its load time is part of the date's inputs.
    select
        cycle_id,
        loaded_at
    from {{ ref('stg_whoop__recoveries') }}

),

woken as (

    select
        cycles.cycle_id,
        cycles.user_id,
        cycles.start_at,
        sleeps.main_sleep_end_at is not null as has_main_sleep,
        -- You wake up from the cycle's main sleep on the day WHOOP shows its recovery; the sleep's own offset says
        -- where (after a flight or across a daylight-saving change it is not the cycle's). A cycle without a main
        -- sleep is dated as if it had ended 12 hours after it began: evening starts count for the next day.
        coalesce(
            sleeps.main_sleep_end_at,
            {{ dbt.dateadd('hour', 12, 'cycles.start_at') }}
        ) as wake_at,
        coalesce(
            {{ whoop_local_timestamp('sleeps.main_sleep_end_at', 'sleeps.main_sleep_timezone_offset_minutes') }},
            {{ dbt.dateadd('hour', 12, 'cycles.start_at_local') }}
        ) as wake_at_local,
        {{ whoop_latest_of(['cycles.loaded_at', 'sleeps.loaded_at', 'recoveries.loaded_at']) }} as loaded_at
    from cycles
    left join sleeps
        on cycles.cycle_id = sleeps.cycle_id
    left join recoveries
        on cycles.cycle_id = recoveries.cycle_id

),

dated as (

    select
        *,
        cast(wake_at_local as date) as date_day
    from woken

),

numbered as (

    select
        cycle_id,
        user_id,
        date_day,
        wake_at,
        wake_at_local,
        has_main_sleep,
        -- Rarely two cycles wake on one date (shift work; flying west across the date line). The day's cycle (1)
        -- is the first to wake from a main sleep; the others stay in fct_cycles with 2, 3, ...
        row_number() over (
            partition by user_id, date_day
            order by case when has_main_sleep then 0 else 1 end asc, wake_at asc, start_at asc, cycle_id asc
        ) as day_cycle_number,
        loaded_at
    from dated

)

select * from numbered
