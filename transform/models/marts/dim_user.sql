with

profiles as (

    select * from {{ ref('stg_whoop__profile') }}

),

body_measurements as (

    select * from {{ ref('stg_whoop__body_measurement') }}

),

joined as (

    select
        profiles.user_id,
        profiles.email,
        profiles.first_name,
        profiles.last_name,
        body_measurements.height_meter,
        body_measurements.weight_kilogram,
        body_measurements.max_heart_rate,
        body_measurements.weight_kilogram / (body_measurements.height_meter * body_measurements.height_meter)
            as body_mass_index,
        {{ whoop_latest_of(['profiles.loaded_at', 'body_measurements.loaded_at']) }} as loaded_at
    from profiles
    left join body_measurements
        on profiles.user_id = body_measurements.user_id

)

select * from joined
