-- The samples of each athlete's sleeps of their last 60 days (staging.stg_whoop__sleep_signals), for the curve of a
-- night: the whole history would weigh on every reader's browser.
select
    samples.sleep_id,
    samples.sampled_at,
    samples.heart_rate_bpm,
    samples.skin_temp_celsius,
    samples.is_sleeping
from staging.stg_whoop__sleep_signals as samples
inner join (
    select
        sleep_id,
        date_day,
        max(date_day) over (partition by user_id) as last_day
    from marts.fct_sleep_vitals
) as nights
    on samples.sleep_id = nights.sleep_id
where nights.date_day > nights.last_day - 60
