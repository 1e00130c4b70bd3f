{{
    config(
        materialized='incremental',
        unique_key='sleep_id',
        post_hook="{{ whoop_delete_missing('sleep_id', ref('stg_whoop__sleep_signals')) }}",
    )
}}

{#- The skin-temperature baseline averages the main sleeps of the 30 days before a night, so a night's change
    reaches the main sleeps of the 30 days after it. -#}
{%- set reach_days = 30 -%}

with

samples as (

    select * from {{ ref('stg_whoop__sleep_signals') }}

),

sleeps as (

    select
        sleep_id,
        cycle_id,
        user_id,
        is_nap,
        start_at,
        end_at,
        end_date_local,
        timezone_offset_minutes,
        loaded_at
    from {{ ref('stg_whoop__sleeps') }}

),

cycle_days as (

    select
        cycle_id,
        date_day,
        loaded_at
    from {{ ref('int_cycles_dated') }}

),

streams as (

    -- The sleeps with a stream of samples, and when it was loaded.
    select
        sleep_id,
        max(loaded_at) as loaded_at
    from samples
    group by sleep_id

),

nights as (

    select
        sleeps.sleep_id,
        sleeps.user_id,
        -- The day of the sleep's cycle (the day its main sleep ended), as in fct_sleeps; before that cycle is
        -- loaded, the local date the sleep ended.
        coalesce(cycle_days.date_day, sleeps.end_date_local) as date_day,
        sleeps.is_nap,
        sleeps.start_at,
        sleeps.end_at,
        sleeps.timezone_offset_minutes,
        {{ whoop_latest_of(['streams.loaded_at', 'sleeps.loaded_at', 'cycle_days.loaded_at']) }} as loaded_at
    from streams
    inner join sleeps
        on streams.sleep_id = sleeps.sleep_id
    left join cycle_days
        on sleeps.cycle_id = cycle_days.cycle_id

),

flagged as (

    select
        *,
        case when {{ whoop_is_new_since_last_run() }} then 1 else 0 end as is_new
    from nights

),

{% if is_incremental() %}

stored as (

    select
        sleep_id,
        user_id,
        date_day
    from {{ this }}

),

touched_days as (

    -- The dates a changed sleep is on now, was on before (an edit can move it), or leaves (its stream emptied, or
    -- it was deleted: then every sleep of the athlete is new, see whoop_is_new_since_last_run).
    select
        user_id,
        date_day
    from flagged
    where is_new = 1

    union all

    select
        stored.user_id,
        stored.date_day
    from stored
    left join flagged
        on stored.sleep_id = flagged.sleep_id
    where flagged.sleep_id is null or flagged.is_new = 1

),

reached as (

    -- The main sleeps whose baseline window holds a touched date.
    select distinct flagged.sleep_id
    from flagged
    inner join touched_days
        on flagged.user_id = touched_days.user_id
        and flagged.date_day > touched_days.date_day
        and flagged.date_day <= {{ dbt.dateadd('day', reach_days, 'touched_days.date_day') }}
    where not flagged.is_nap

),

to_build as (

    select flagged.*
    from flagged
    where
        flagged.is_new = 1
        or flagged.sleep_id in (select reached.sleep_id from reached)

),

{% else %}

to_build as (

    select * from flagged

),

{% endif %}

window_nights as (

    -- The sleeps to build, and the main sleeps of the 30 days before each (their baselines).
    select distinct flagged.*
    from flagged
    inner join to_build
        on flagged.user_id = to_build.user_id
        and flagged.date_day <= to_build.date_day
        and flagged.date_day >= {{ dbt.dateadd('day', -1 * reach_days, 'to_build.date_day') }}
    where flagged.sleep_id = to_build.sleep_id or not flagged.is_nap

),

ordered_samples as (

    select
        samples.sleep_id,
        samples.sampled_at,
        samples.heart_rate_bpm,
        samples.skin_temp_celsius,
        samples.is_sleeping,
        samples.is_charging,
        window_nights.end_at,
        lead(samples.sampled_at) over (
            partition by samples.sleep_id order by samples.sampled_at
        ) as next_sampled_at
    from samples
    inner join window_nights
        on samples.sleep_id = window_nights.sleep_id

),

gaps as (

    select
        *,
        {{ dbt.datediff('sampled_at', 'next_sampled_at', 'millisecond') }} as gap_milli,
        {{ dbt.datediff('sampled_at', 'end_at', 'millisecond') }} as milli_to_end
    from ordered_samples

),

median_gaps as (

    select
        sleep_id,
        percentile_cont(0.5) within group (order by gap_milli) as median_gap_milli
    from gaps
    where gap_milli is not null
    group by sleep_id

),

timed_samples as (

    -- The sampling interval is not documented (nor fixed): a sample counts until the next one; the last until
    -- the sleep's end, but no longer than the sleep's median gap (a stream that stops early does not stretch its
    -- last state over the rest of the night), and never before its own time.
    select
        gaps.*,
        case
            when gaps.gap_milli is not null then gaps.gap_milli
            when gaps.milli_to_end is null or gaps.milli_to_end <= 0 then 0
            when median_gaps.median_gap_milli < gaps.milli_to_end then median_gaps.median_gap_milli
            else gaps.milli_to_end
        end as counted_milli
    from gaps
    left join median_gaps
        on gaps.sleep_id = median_gaps.sleep_id

),

per_sleep as (

    select
        sleep_id,
        count(*) as sample_count,
        min(heart_rate_bpm) as heart_rate_min_bpm,
        avg(heart_rate_bpm) as heart_rate_avg_bpm,
        max(heart_rate_bpm) as heart_rate_max_bpm,
        -- Charging warms the strap: those samples say nothing of the skin.
        avg(case when is_charging then null else skin_temp_celsius end) as skin_temp_avg_celsius,
        cast(sum(case when is_sleeping then counted_milli else 0 end) as {{ whoop_type_double() }})
        / 60000 as minutes_sleeping,
        cast(sum(case when not is_sleeping then counted_milli else 0 end) as {{ whoop_type_double() }})
        / 60000 as minutes_awake
    from timed_samples
    group by sleep_id

),

measured as (

    select
        window_nights.sleep_id,
        window_nights.user_id,
        window_nights.date_day,
        window_nights.is_nap,
        per_sleep.skin_temp_avg_celsius
    from window_nights
    inner join per_sleep
        on window_nights.sleep_id = per_sleep.sleep_id

),

baselines as (

    -- A main sleep's baseline: the average skin temperature of the athlete's main sleeps dated in the 30 days
    -- before its own (naps are left out: daytime skin is warmer); nights without a reading are skipped.
    select
        to_build.sleep_id,
        avg(earlier.skin_temp_avg_celsius) as skin_temp_baseline_celsius,
        count(earlier.skin_temp_avg_celsius) as skin_temp_baseline_nights
    from to_build
    inner join measured as earlier
        on to_build.user_id = earlier.user_id
        and to_build.date_day > earlier.date_day
        and {{ dbt.dateadd('day', -1 * reach_days, 'to_build.date_day') }} <= earlier.date_day
        and not earlier.is_nap
    where not to_build.is_nap
    group by to_build.sleep_id

),

final as (

    select
        to_build.sleep_id,
        to_build.user_id,
        to_build.date_day,
        to_build.is_nap,
        to_build.start_at,
        to_build.end_at,
        to_build.timezone_offset_minutes,
        per_sleep.sample_count,
        per_sleep.heart_rate_min_bpm,
        per_sleep.heart_rate_avg_bpm,
        per_sleep.heart_rate_max_bpm,
        per_sleep.skin_temp_avg_celsius,
        baselines.skin_temp_baseline_celsius,
        coalesce(baselines.skin_temp_baseline_nights, 0) as skin_temp_baseline_nights,
        per_sleep.skin_temp_avg_celsius - baselines.skin_temp_baseline_celsius as skin_temp_deviation_celsius,
        per_sleep.minutes_sleeping,
        per_sleep.minutes_awake,
        to_build.loaded_at
    from to_build
    inner join per_sleep
        on to_build.sleep_id = per_sleep.sleep_id
    left join baselines
        on to_build.sleep_id = baselines.sleep_id

)

select * from final
