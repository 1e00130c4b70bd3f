with

source as (

    select * from {{ source('whoop', 'sleeps') }}

),

renamed as (

    select
        cast(id as {{ dbt.type_string() }}) as sleep_id,
        cast(cycle_id as {{ dbt.type_bigint() }}) as cycle_id,
        cast(v1_id as {{ dbt.type_bigint() }}) as v1_id,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,

        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
        cast({{ whoop_raw_column('start') }} as {{ dbt.type_timestamp() }}) as start_at,
        cast({{ whoop_raw_column('end') }} as {{ dbt.type_timestamp() }}) as end_at,
        timezone_offset,
        {{ whoop_utc_offset_minutes('timezone_offset') }} as timezone_offset_minutes,
        cast(nap as {{ dbt.type_boolean() }}) as is_nap,

        score_state,
        cast(score__stage_summary__total_in_bed_time_milli as {{ dbt.type_bigint() }}) as total_in_bed_time_milli,
        cast(score__stage_summary__total_awake_time_milli as {{ dbt.type_bigint() }}) as total_awake_time_milli,
        cast(score__stage_summary__total_no_data_time_milli as {{ dbt.type_bigint() }}) as total_no_data_time_milli,
        cast(score__stage_summary__total_light_sleep_time_milli as {{ dbt.type_bigint() }})
            as total_light_sleep_time_milli,
        cast(score__stage_summary__total_slow_wave_sleep_time_milli as {{ dbt.type_bigint() }})
            as total_slow_wave_sleep_time_milli,
        cast(score__stage_summary__total_rem_sleep_time_milli as {{ dbt.type_bigint() }}) as total_rem_sleep_time_milli,
        cast(score__stage_summary__sleep_cycle_count as {{ dbt.type_int() }}) as sleep_cycle_count,
        cast(score__stage_summary__disturbance_count as {{ dbt.type_int() }}) as disturbance_count,
        cast(score__sleep_needed__baseline_milli as {{ dbt.type_bigint() }}) as sleep_needed_baseline_milli,
        cast(score__sleep_needed__need_from_sleep_debt_milli as {{ dbt.type_bigint() }}) as need_from_sleep_debt_milli,
        cast(score__sleep_needed__need_from_recent_strain_milli as {{ dbt.type_bigint() }})
            as need_from_recent_strain_milli,
        cast(score__sleep_needed__need_from_recent_nap_milli as {{ dbt.type_bigint() }}) as need_from_recent_nap_milli,
        cast(score__respiratory_rate as {{ whoop_type_double() }}) as respiratory_rate,
        cast(score__sleep_performance_percentage as {{ whoop_type_double() }}) as sleep_performance_percentage,
        cast(score__sleep_consistency_percentage as {{ whoop_type_double() }}) as sleep_consistency_percentage,
        cast(score__sleep_efficiency_percentage as {{ whoop_type_double() }}) as sleep_efficiency_percentage,

        {{ whoop_unmodelled_fields('sleeps') }} as unmodelled_fields,

        cast(_sdc_extracted_at as {{ dbt.type_timestamp() }}) as extracted_at,
        cast(_sdc_batched_at as {{ dbt.type_timestamp() }}) as loaded_at

    from source

),

deduplicated as (

    {{ whoop_latest_per_key('renamed', 'sleep_id') }}

),

deletions as (

    {{ whoop_deletions_of(['sleeps']) }}

),

live as (

    -- Deleted at WHOOP: out, unless WHOOP served it again after the deletion (a newer updated_at).
    select deduplicated.*
    from deduplicated
    left join deletions
        on deduplicated.user_id = deletions.user_id
        and deduplicated.sleep_id = deletions.record_id
    where deletions.record_id is null or deduplicated.updated_at > deletions.deleted_at

),

derived as (

    select
        *,
        total_light_sleep_time_milli + total_slow_wave_sleep_time_milli + total_rem_sleep_time_milli
            as total_sleep_time_milli,
        -- WHOOP's sleep need is the sum of its parts (the nap part is zero or negative).
        sleep_needed_baseline_milli + need_from_sleep_debt_milli + need_from_recent_strain_milli
        + need_from_recent_nap_milli as sleep_needed_milli,
        {{ whoop_local_timestamp('start_at', 'timezone_offset_minutes') }} as start_at_local,
        {{ whoop_local_timestamp('end_at', 'timezone_offset_minutes') }} as end_at_local
    from live

),

converted as (

    select
        *,
        {{ whoop_milli_to('total_in_bed_time_milli', 'hours') }} as total_in_bed_time_hours,
        {{ whoop_milli_to('total_awake_time_milli', 'hours') }} as total_awake_time_hours,
        {{ whoop_milli_to('total_no_data_time_milli', 'hours') }} as total_no_data_time_hours,
        {{ whoop_milli_to('total_light_sleep_time_milli', 'hours') }} as total_light_sleep_time_hours,
        {{ whoop_milli_to('total_slow_wave_sleep_time_milli', 'hours') }} as total_slow_wave_sleep_time_hours,
        {{ whoop_milli_to('total_rem_sleep_time_milli', 'hours') }} as total_rem_sleep_time_hours,
        {{ whoop_milli_to('total_sleep_time_milli', 'hours') }} as total_sleep_time_hours,
        {{ whoop_milli_to('sleep_needed_milli', 'hours') }} as sleep_needed_hours,
        cast(start_at_local as date) as start_date_local,
        cast(end_at_local as date) as end_date_local
    from derived

)

select * from converted
