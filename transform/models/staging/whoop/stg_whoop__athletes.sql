with

source as (

    select * from {{ source('whoop', 'athletes') }}

),

renamed as (

    select
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        status as enrollment_status,
        status_reason as enrollment_status_reason,
        cast(enrolled_at as {{ dbt.type_timestamp() }}) as enrolled_at,
        cast(last_synced_at as {{ dbt.type_timestamp() }}) as last_synced_at,

        cast(_sdc_extracted_at as {{ dbt.type_timestamp() }}) as extracted_at,
        cast(_sdc_batched_at as {{ dbt.type_timestamp() }}) as loaded_at

    from source

),

deduplicated as (

    -- The registry is re-read whole every run: the latest extraction is the athlete's status now.
    {{ whoop_latest_per_key('renamed', 'user_id', order_by=['extracted_at', 'loaded_at']) }}

)

select * from deduplicated
