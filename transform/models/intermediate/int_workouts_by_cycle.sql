-- Workouts carry no cycle id: each belongs to the user's cycle that was running when it started.
with

workouts as (

    select * from {{ ref('stg_whoop__workouts') }}

),

cycles as (

    select
        cycle_id,
        user_id,
        start_at,
        end_at
    from {{ ref('stg_whoop__cycles') }}

),

cycle_days as (

    select
        cycle_id,
        date_day,
        loaded_at
    from {{ ref('int_cycles_dated') }}

),

candidates as (

    select
        workouts.workout_id,
        cycles.cycle_id,
        -- Cycles do not overlap; should WHOOP ever send overlapping ones, the later-starting cycle wins. (A rank
        -- rather than QUALIFY, which PostgreSQL lacks.)
        row_number() over (partition by workouts.workout_id order by cycles.start_at desc nulls last) as cycle_rank
    from workouts
    left join cycles
        on workouts.user_id = cycles.user_id
        and workouts.start_at >= cycles.start_at
        and (cycles.end_at is null or workouts.start_at < cycles.end_at)

),

matched as (

    select
        workouts.*,
        candidates.cycle_id
    from workouts
    inner join candidates
        on workouts.workout_id = candidates.workout_id
        and candidates.cycle_rank = 1

),

dated as (

    select
        matched.*,
        -- The day of the cycle (the day its main sleep ended); a workout outside every known cycle falls back to
        -- its own local date.
        coalesce(cycle_days.date_day, matched.start_date_local) as date_day,
        cycle_days.loaded_at as cycle_loaded_at
    from matched
    left join cycle_days
        on matched.cycle_id = cycle_days.cycle_id

)

select * from dated
