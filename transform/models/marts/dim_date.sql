{#- The calendar spans whole years around the data: from January 1st of the year before the first cycle to the end
    of the year after the later of the last cycle and today, so every fact date (sleeps and workouts sit within a day
    of a cycle) has its row. -#}
{%- set cycles = ref('stg_whoop__cycles') -%}
{#- Today is the run's start in UTC, not the machine's local date. -#}
{%- set first_year, last_year = run_started_at.year, run_started_at.year -%}
{#- Compiling against a warehouse that has no staging yet (a fresh one, or SQLFluff's linting) keeps today's year. -#}
{%- if execute and load_relation(cycles) is not none -%}
    {%- set bounds = run_query(
        "select min(cycle_date), max(cycle_date) from " ~ cycles
    ).rows[0] -%}
    {%- if bounds[0] is not none -%}
        {%- set first_year = [bounds[0].year, first_year] | min -%}
        {%- set last_year = [bounds[1].year, last_year] | max -%}
    {%- endif -%}
{%- endif -%}

with

spine as (

    {{ dbt.date_spine(
        datepart='day',
        start_date="cast('" ~ (first_year - 1) ~ "-01-01' as date)",
        end_date="cast('" ~ (last_year + 2) ~ "-01-01' as date)"
    ) }}

),

days as (

    select
        cast(date_day as date) as date_day,
        -- 1900-01-01 was a Monday: ISO weekdays by arithmetic behave the same on every warehouse.
        mod({{ dbt.datediff("cast('1900-01-01' as date)", 'cast(date_day as date)', 'day') }}, 7) + 1 as iso_day_of_week
    from spine

),

iso as (

    select
        *,
        -- ISO weeks belong to the year of their Thursday.
        cast({{ dbt.dateadd('day', '4 - iso_day_of_week', 'date_day') }} as date) as iso_week_thursday
    from days

),

attributes as (

    select
        date_day,
        cast(extract(year from date_day) as {{ dbt.type_int() }}) * 10000
        + cast(extract(month from date_day) as {{ dbt.type_int() }}) * 100
        + cast(extract(day from date_day) as {{ dbt.type_int() }}) as date_key,

        iso_day_of_week,
        case iso_day_of_week
            when 1 then 'Monday' when 2 then 'Tuesday' when 3 then 'Wednesday' when 4 then 'Thursday'
            when 5 then 'Friday' when 6 then 'Saturday' when 7 then 'Sunday'
        end as day_of_week_name,
        case iso_day_of_week
            when 1 then 'Mon' when 2 then 'Tue' when 3 then 'Wed' when 4 then 'Thu'
            when 5 then 'Fri' when 6 then 'Sat' when 7 then 'Sun'
        end as day_of_week_name_short,
        iso_day_of_week >= 6 as is_weekend,
        cast(extract(day from date_day) as {{ dbt.type_int() }}) as day_of_month,
        {{ dbt.datediff(dbt.date_trunc('year', 'date_day'), 'date_day', 'day') }} + 1 as day_of_year,

        cast({{ dbt.dateadd('day', '1 - iso_day_of_week', 'date_day') }} as date) as week_start_date,
        cast({{ dbt.dateadd('day', '7 - iso_day_of_week', 'date_day') }} as date) as week_end_date,
        cast(extract(year from iso_week_thursday) as {{ dbt.type_int() }}) as iso_year,
        cast(
            floor({{ dbt.datediff(dbt.date_trunc('year', 'iso_week_thursday'), 'iso_week_thursday', 'day') }} / 7) + 1
            as {{ dbt.type_int() }}
        ) as iso_week_of_year,

        cast(extract(month from date_day) as {{ dbt.type_int() }}) as month_of_year,
        case cast(extract(month from date_day) as {{ dbt.type_int() }})
            when 1 then 'January' when 2 then 'February' when 3 then 'March' when 4 then 'April'
            when 5 then 'May' when 6 then 'June' when 7 then 'July' when 8 then 'August'
            when 9 then 'September' when 10 then 'October' when 11 then 'November' when 12 then 'December'
        end as month_name,
        cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date,
        cast({{ dbt.last_day('date_day', 'month') }} as date) as month_end_date,

        cast(extract(quarter from date_day) as {{ dbt.type_int() }}) as quarter_of_year,
        cast({{ dbt.date_trunc('quarter', 'date_day') }} as date) as quarter_start_date,
        cast({{ dbt.last_day('date_day', 'quarter') }} as date) as quarter_end_date,

        cast(extract(year from date_day) as {{ dbt.type_int() }}) as year_number,
        cast({{ dbt.date_trunc('year', 'date_day') }} as date) as year_start_date,
        cast({{ dbt.last_day('date_day', 'year') }} as date) as year_end_date,

        -- Meteorological seasons of the northern hemisphere.
        case
            when extract(month from date_day) in (12, 1, 2) then 'Winter'
            when extract(month from date_day) in (3, 4, 5) then 'Spring'
            when extract(month from date_day) in (6, 7, 8) then 'Summer'
            else 'Autumn'
        end as season
    from iso

)

select * from attributes
