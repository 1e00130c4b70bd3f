-- One row per cycle that has any sleep: its main (overnight) sleep and its naps.
with

sleeps as (

    select * from {{ ref('stg_whoop__sleeps') }}

),

recoveries as (

    select
        cycle_id,
        sleep_id
    from {{ ref('stg_whoop__recoveries') }}

),

ranked_sleeps as (

    -- The sleep WHOOP based the cycle's recovery on; without a recovery, the longest non-nap sleep. (A rank
    -- rather than QUALIFY, which PostgreSQL lacks.)
    select
        sleeps.*,
        row_number() over (
            partition by sleeps.cycle_id
            order by
                case when recoveries.sleep_id is null then 1 else 0 end asc,
                sleeps.total_in_bed_time_milli desc nulls last,
                sleeps.start_at desc,
                sleeps.sleep_id asc
        ) as main_sleep_rank
    from sleeps
    left join recoveries
        on sleeps.sleep_id = recoveries.sleep_id
    where not sleeps.is_nap

),

main_sleeps as (

    select * from ranked_sleeps
    where main_sleep_rank = 1

),

per_cycle as (

    select
        cycle_id,
        cast(sum(case when is_nap then 1 else 0 end) as {{ dbt.type_int() }}) as nap_count,
        sum(case when is_nap then total_sleep_time_hours end) as nap_sleep_hours,
        max(loaded_at) as loaded_at
    from sleeps
    group by cycle_id

),

by_cycle as (

    select
        per_cycle.cycle_id,
        main_sleeps.sleep_id as main_sleep_id,
        main_sleeps.score_state as main_sleep_score_state,
        main_sleeps.start_at as main_sleep_start_at,
        main_sleeps.end_at as main_sleep_end_at,
        -- The offset WHOOP recorded with the sleep: where the athlete woke up (after a flight it is not the one
        -- of the day before).
        main_sleeps.timezone_offset_minutes as main_sleep_timezone_offset_minutes,
        main_sleeps.total_in_bed_time_hours,
        main_sleeps.total_sleep_time_hours,
        main_sleeps.total_light_sleep_time_hours,
        main_sleeps.total_slow_wave_sleep_time_hours,
        main_sleeps.total_rem_sleep_time_hours,
        main_sleeps.total_awake_time_hours,
        main_sleeps.sleep_needed_hours,
        main_sleeps.total_sleep_time_hours - main_sleeps.sleep_needed_hours as sleep_balance_hours,
        main_sleeps.sleep_performance_percentage,
        main_sleeps.sleep_efficiency_percentage,
        main_sleeps.sleep_consistency_percentage,
        main_sleeps.respiratory_rate,
        main_sleeps.disturbance_count,
        per_cycle.nap_count,
        coalesce(per_cycle.nap_sleep_hours, 0) as nap_sleep_hours,
        per_cycle.loaded_at
    from per_cycle
    left join main_sleeps
        on per_cycle.cycle_id = main_sleeps.cycle_id

)

select * from by_cycle
