with

profiles as (

    select * from {{ ref('stg_whoop__profile') }}

),

athletes as (

    select * from {{ ref('stg_whoop__athletes') }}

),

-- Every athlete the app has enrolled, and anyone with a profile (a marker may have been purged from the store).
users as (

    select user_id from athletes
    union
    select user_id from profiles

),

body_measurements as (

    select * from {{ ref('stg_whoop__body_measurement') }}

),

joined as (

    select
        users.user_id,
        profiles.email,
        profiles.first_name,
        profiles.last_name,
        body_measurements.height_meter,
        body_measurements.weight_kilogram,
        body_measurements.max_heart_rate,
        body_measurements.weight_kilogram / (body_measurements.height_meter * body_measurements.height_meter)
            as body_mass_index,
        coalesce(athletes.enrollment_status, 'unknown') as enrollment_status,
        athletes.enrollment_status_reason,
        athletes.enrolled_at,
        athletes.last_synced_at,
        {{ whoop_latest_of([
            'coalesce(profiles.loaded_at, athletes.loaded_at)',
            'body_measurements.loaded_at',
            'athletes.loaded_at',
        ]) }} as loaded_at
    from users
    left join profiles
        on users.user_id = profiles.user_id
    left join body_measurements
        on users.user_id = body_measurements.user_id
    left join athletes
        on users.user_id = athletes.user_id

)

select * from joined
