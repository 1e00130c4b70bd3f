{%- set zones = ['zero', 'one', 'two', 'three', 'four', 'five'] -%}

with

source as (

    select * from {{ source('whoop', 'workouts') }}

),

renamed as (

    select
        cast(id as {{ dbt.type_string() }}) as workout_id,
        cast(v1_id as {{ dbt.type_bigint() }}) as v1_id,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,

        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
        cast({{ whoop_raw_column('start') }} as {{ dbt.type_timestamp() }}) as start_at,
        cast({{ whoop_raw_column('end') }} as {{ dbt.type_timestamp() }}) as end_at,
        timezone_offset,
        {{ whoop_utc_offset_minutes('timezone_offset') }} as timezone_offset_minutes,
        cast(sport_id as {{ dbt.type_int() }}) as sport_id,
        sport_name,

        score_state,
        cast(score__strain as {{ whoop_type_double() }}) as strain,
        cast(score__average_heart_rate as {{ dbt.type_int() }}) as average_heart_rate,
        cast(score__max_heart_rate as {{ dbt.type_int() }}) as max_heart_rate,
        cast(score__kilojoule as {{ whoop_type_double() }}) as kilojoule,
        cast(score__percent_recorded as {{ whoop_type_double() }}) as percent_recorded,
        cast(score__distance_meter as {{ whoop_type_double() }}) as distance_meter,
        cast(score__altitude_gain_meter as {{ whoop_type_double() }}) as altitude_gain_meter,
        cast(score__altitude_change_meter as {{ whoop_type_double() }}) as altitude_change_meter,
        {%- for zone in zones %}
        cast(score__zone_durations__zone_{{ zone }}_milli as {{ dbt.type_bigint() }}) as zone_{{ zone }}_milli,
        {%- endfor %}

        {{ whoop_unmodelled_fields('workouts') }} as unmodelled_fields,

        cast(_sdc_extracted_at as {{ dbt.type_timestamp() }}) as extracted_at,
        cast(_sdc_batched_at as {{ dbt.type_timestamp() }}) as loaded_at

    from source

),

deduplicated as (

    {{ whoop_latest_per_key('renamed', 'workout_id') }}

),

deletions as (

    {{ whoop_deletions_of(['workouts']) }}

),

live as (

    -- Deleted at WHOOP: out, unless WHOOP served it again after the deletion (a newer updated_at).
    select deduplicated.*
    from deduplicated
    left join deletions
        on deduplicated.user_id = deletions.user_id
        and deduplicated.workout_id = deletions.record_id
    where deletions.record_id is null or deduplicated.updated_at > deletions.deleted_at

),

localized as (

    select
        *,
        {{ whoop_local_timestamp('start_at', 'timezone_offset_minutes') }} as start_at_local,
        {{ whoop_local_timestamp('end_at', 'timezone_offset_minutes') }} as end_at_local
    from live

),

converted as (

    select
        *,
        cast({{ dbt.datediff('start_at', 'end_at', 'second') }} as {{ whoop_type_double() }}) / 60 as duration_minutes,
        {%- for zone in zones %}
        {{ whoop_milli_to('zone_' ~ zone ~ '_milli', 'minutes') }} as zone_{{ zone }}_minutes,
        {%- endfor %}
        cast(start_at_local as date) as start_date_local
    from localized

)

select * from converted
