with

source as (

    select * from {{ source('whoop', 'sleep_signals') }}

),

renamed as (

    select
        cast(sleep_id as {{ dbt.type_string() }}) as sleep_id,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        cast(sleep_updated_at as {{ dbt.type_timestamp() }}) as sleep_updated_at,
        cast(part as {{ dbt.type_int() }}) as part,
        algorithm_version,
        stream,
        -- Fields WHOOP adds beside `stream`; a key it adds to the samples stays in raw `stream`, verbatim.
        {{ whoop_unmodelled_fields('sleep_signals') }} as unmodelled_fields,

        cast(_sdc_extracted_at as {{ dbt.type_timestamp() }}) as extracted_at,
        cast(_sdc_batched_at as {{ dbt.type_timestamp() }}) as loaded_at

    from source

),

latest_parts as (

    -- Each part of each version once: the same version loaded twice goes to the latest load.
    {{ whoop_latest_per_key('renamed', 'sleep_id, sleep_updated_at, part', order_by=['loaded_at', 'extracted_at']) }}

),

newest_versions as (

    select
        sleep_id,
        max(sleep_updated_at) as sleep_updated_at
    from renamed
    group by sleep_id

),

latest_streams as (

    -- A sleep's newest stream replaces every older one whole (their samples vanish even where the timestamps
    -- differ, and an older version's later parts with them): the parts of the newest version of the sleep.
    select latest_parts.*
    from latest_parts
    inner join newest_versions
        on latest_parts.sleep_id = newest_versions.sleep_id
        and latest_parts.sleep_updated_at = newest_versions.sleep_updated_at

),

sleeps as (

    -- The live sleeps: a deleted sleep takes its samples with it, and brings them back when WHOOP serves it again
    -- (stg_whoop__sleeps' rule).
    select
        sleep_id,
        user_id
    from {{ ref('stg_whoop__sleeps') }}

),

live_streams as (

    select latest_streams.*
    from latest_streams
    inner join sleeps
        on latest_streams.sleep_id = sleeps.sleep_id
        and latest_streams.user_id = sleeps.user_id

),

elements as (

    {{ whoop_json_array_elements(
        'live_streams', 'stream', [
            'sleep_id', 'user_id', 'sleep_updated_at', 'algorithm_version', 'unmodelled_fields', 'loaded_at'
        ]
    ) }}

),

samples as (

    select
        sleep_id,
        user_id,
        {{ whoop_utc_timestamp(whoop_json_text('element', 'timestamp')) }} as sampled_at,
        cast({{ whoop_json_text('element', 'hr') }} as {{ whoop_type_double() }}) as heart_rate_bpm,
        cast({{ whoop_json_text('element', 'skin_temp') }} as {{ whoop_type_double() }}) as skin_temp_celsius,
        cast({{ whoop_json_text('element', 'board_temp') }} as {{ whoop_type_double() }}) as board_temp_celsius,
        cast({{ whoop_json_text('element', 'battery_temp') }} as {{ whoop_type_double() }}) as battery_temp_celsius,
        cast({{ whoop_json_text('element', 'is_sleeping') }} as {{ dbt.type_boolean() }}) as is_sleeping,
        cast({{ whoop_json_text('element', 'is_charging') }} as {{ dbt.type_boolean() }}) as is_charging,
        algorithm_version,
        unmodelled_fields,
        sleep_updated_at,
        loaded_at
    from elements

),

placed as (

    -- A sample without a time cannot be placed on the night.
    select * from samples
    where sampled_at is not null

)

select * from placed
