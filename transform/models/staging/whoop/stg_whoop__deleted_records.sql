with

source as (

    select * from {{ source('whoop', 'deleted_records') }}

),

renamed as (

    select
        stream,
        cast(id as {{ dbt.type_string() }}) as record_id,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,

        cast(deleted_at as {{ dbt.type_timestamp() }}) as deleted_at,
        detected_by,
        trace_id,

        cast(_sdc_extracted_at as {{ dbt.type_timestamp() }}) as extracted_at,
        cast(_sdc_batched_at as {{ dbt.type_timestamp() }}) as loaded_at

    from source

),

deduplicated as (

    -- Raw holds a deletion once per loader upsert; an append-only loader keeps them all: the latest wins.
    {{ whoop_latest_per_key('renamed', 'stream, record_id', order_by=['deleted_at', 'loaded_at']) }}

)

select * from deduplicated
