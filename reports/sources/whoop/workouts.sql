-- One row per workout (marts.fct_workouts) with its day, sport, strain and heart-rate zone minutes.
select
    workout_id,
    user_id,
    date_day,
    sport_name,
    score_state,
    duration_minutes,
    strain,
    average_heart_rate,
    max_heart_rate,
    kilojoule,
    distance_meter,
    zone_zero_minutes,
    zone_one_minutes,
    zone_two_minutes,
    zone_three_minutes,
    zone_four_minutes,
    zone_five_minutes
from marts.fct_workouts
