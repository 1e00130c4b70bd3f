with

source as (

    select * from {{ source('whoop', 'profile') }}

),

renamed as (

    select
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        email,
        first_name,
        last_name,

        {{ whoop_unmodelled_fields('profile') }} as unmodelled_fields,

        cast(_sdc_extracted_at as {{ dbt.type_timestamp() }}) as extracted_at,
        cast(_sdc_batched_at as {{ dbt.type_timestamp() }}) as loaded_at

    from source

),

deduplicated as (

    -- Profiles carry no updated_at: the latest extraction wins.
    {{ whoop_latest_per_key('renamed', 'user_id', order_by=['extracted_at', 'loaded_at']) }}

)

select * from deduplicated
