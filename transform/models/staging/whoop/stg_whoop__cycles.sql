with

source as (

    select * from {{ source('whoop', 'cycles') }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as cycle_id,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,

        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
        cast({{ whoop_raw_column('start') }} as {{ dbt.type_timestamp() }}) as start_at,
        cast({{ whoop_raw_column('end') }} as {{ dbt.type_timestamp() }}) as end_at,
        timezone_offset,
        {{ whoop_utc_offset_minutes('timezone_offset') }} as timezone_offset_minutes,

        score_state,
        cast(score__strain as {{ whoop_type_double() }}) as strain,
        cast(score__kilojoule as {{ whoop_type_double() }}) as kilojoule,
        cast(score__average_heart_rate as {{ dbt.type_int() }}) as average_heart_rate,
        cast(score__max_heart_rate as {{ dbt.type_int() }}) as max_heart_rate,

        {{ whoop_unmodelled_fields('cycles') }} as unmodelled_fields,

        cast(_sdc_extracted_at as {{ dbt.type_timestamp() }}) as extracted_at,
        cast(_sdc_batched_at as {{ dbt.type_timestamp() }}) as loaded_at

    from source

),

deduplicated as (

    {{ whoop_latest_per_key('renamed', 'cycle_id') }}

),

deletions as (

    {{ whoop_deletions_of(['cycles']) }}

),

live as (

    -- Deleted at WHOOP: out, unless WHOOP served it again after the deletion (a newer updated_at).
    select deduplicated.*
    from deduplicated
    left join deletions
        on deduplicated.user_id = deletions.user_id
        and cast(deduplicated.cycle_id as {{ dbt.type_string() }}) = deletions.record_id
    where deletions.record_id is null or deduplicated.updated_at > deletions.deleted_at

),

localized as (

    select
        *,
        {{ whoop_local_timestamp('start_at', 'timezone_offset_minutes') }} as start_at_local,
        {{ whoop_local_timestamp('end_at', 'timezone_offset_minutes') }} as end_at_local
    from live

),

dated as (

    select
        *,
        -- A WHOOP day is the local calendar date on which the cycle started.
        cast(start_at_local as date) as cycle_date,
        end_at is null as is_current
    from localized

)

select * from dated
