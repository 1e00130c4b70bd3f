with

source as (

    select * from {{ source('whoop', 'recoveries') }}

),

renamed as (

    select
        cast(cycle_id as {{ dbt.type_bigint() }}) as cycle_id,
        cast(sleep_id as {{ dbt.type_string() }}) as sleep_id,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,

        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,

        score_state,
        cast(score__user_calibrating as {{ dbt.type_boolean() }}) as user_calibrating,
        cast(score__recovery_score as {{ whoop_type_double() }}) as recovery_score,
        cast(score__resting_heart_rate as {{ whoop_type_double() }}) as resting_heart_rate,
        cast(score__hrv_rmssd_milli as {{ whoop_type_double() }}) as hrv_rmssd_milli,
        cast(score__spo2_percentage as {{ whoop_type_double() }}) as spo2_percentage,
        cast(score__skin_temp_celsius as {{ whoop_type_double() }}) as skin_temp_celsius,

        {{ whoop_unmodelled_fields('recoveries') }} as unmodelled_fields,

        cast(_sdc_extracted_at as {{ dbt.type_timestamp() }}) as extracted_at,
        cast(_sdc_batched_at as {{ dbt.type_timestamp() }}) as loaded_at

    from source

),

deduplicated as (

    {{ whoop_latest_per_key('renamed', 'cycle_id') }}

),

deletions as (

    {{ whoop_deletions_of(['recoveries', 'sleeps']) }}

),

live as (

    -- Deleted at WHOOP, or its sleep was: out, unless served again after the deletion (a newer updated_at).
    select deduplicated.*
    from deduplicated
    left join deletions
        on deduplicated.user_id = deletions.user_id
        and deduplicated.sleep_id = deletions.record_id
    where deletions.record_id is null or deduplicated.updated_at > deletions.deleted_at

)

select * from live
