with

source as (

    select * from {{ source('whoop', 'body_measurement') }}

),

renamed as (

    select
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        cast(height_meter as {{ whoop_type_double() }}) as height_meter,
        cast(weight_kilogram as {{ whoop_type_double() }}) as weight_kilogram,
        cast(max_heart_rate as {{ dbt.type_int() }}) as max_heart_rate,

        {{ whoop_unmodelled_fields('body_measurement') }} as unmodelled_fields,

        cast(_sdc_extracted_at as {{ dbt.type_timestamp() }}) as extracted_at,
        cast(_sdc_batched_at as {{ dbt.type_timestamp() }}) as loaded_at

    from source

),

deduplicated as (

    -- Body measurements carry no updated_at: the latest extraction wins.
    {{ whoop_latest_per_key('renamed', 'user_id', order_by=['extracted_at', 'loaded_at']) }}

)

select * from deduplicated
