-- One row per sleep or nap with a stream of samples (marts.fct_sleep_vitals), full precision.
select
    sleep_id,
    user_id,
    date_day,
    is_nap,
    start_at,
    end_at,
    timezone_offset_minutes,
    sample_count,
    heart_rate_min_bpm,
    heart_rate_avg_bpm,
    heart_rate_max_bpm,
    skin_temp_avg_celsius,
    skin_temp_baseline_celsius,
    skin_temp_baseline_nights,
    skin_temp_deviation_celsius,
    minutes_sleeping,
    minutes_awake
from marts.fct_sleep_vitals
