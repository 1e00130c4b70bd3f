"""The built report in a real browser: Debian's Chromium (headless, driven by Playwright) loads every page
from a local static server. No console errors, every chart drawn with data points, and the overview's
numbers equal the marts' for the same days. Screenshots of every page go to test-artifacts/report/.

Chromium is a requirement, not an option: without /usr/bin/chromium the tests fail (`.ci/run` installs it)."""

from __future__ import annotations

import math
import shutil

import pytest
from chromium import launch, require_chromium

from .site import REPO, StaticServer, build_site, marts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

ARTIFACTS = REPO / "test-artifacts" / "report"
# What the report shows for a figure a day does not have (an en dash).
NO_VALUE = "\u2013"
# Pages and the charts each one draws (by title).
PAGES = {
    "/": 5,
    "/recovery": 4,
    "/sleep": 4,
    "/strain": 4,
    "/athletes": 1,
    "/nights": 2,
}
ATHLETE_PAGE_CHARTS = 4
# Every ECharts instance of the page with its series and how many of their points hold a value (for a
# reference area or line, a series without data of its own, how many areas or lines it draws).
CHARTS_JS = """() => {
    const charts = window[Symbol.for('__evidence-chart-window-debug__')] || {};
    const last = (v) => Array.isArray(v) ? v[v.length - 1] : v;
    const value = (d) => (d !== null && typeof d === 'object' && 'value' in d) ? last(d.value) : last(d);
    const drawn = (v) => v !== null && v !== undefined && v !== '-' && !Number.isNaN(v);
    return Object.values(charts).filter((c) => !c.isDisposed()).map((c) => {
        const option = c.getOption();
        return {
            title: (option.title || []).map((t) => t.text).join(' '),
            visible: c.getDom().offsetWidth > 0 && c.getDom().offsetHeight > 0,
            series: (option.series || []).map((s) => ({
                name: s.name,
                points: (s.data || []).filter((d) => drawn(value(d))).length
                    + ((s.markArea || {}).data || []).length + ((s.markLine || {}).data || []).length,
                areas: ((s.markArea || {}).data || []).map((a) => a[0].name),
            })),
        };
    });
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require_chromium()
    return build_site(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(site):
    with StaticServer(site.build_dir) as serving:
        yield serving


def athletes(site) -> list[dict]:
    return marts(
        site.warehouse,
        "select user_id, trim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) as name"
        " from marts.dim_user order by name, user_id",
    )


def open_page(browser, server, path: str):
    """The page loaded and settled, with every console error and uncaught exception it raised."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(server.url + path, wait_until="networkidle")
    page.wait_for_function(
        "document.querySelectorAll('[_echarts_instance_]').length > 0 || !document.querySelector('.chart')"
    )
    page.wait_for_timeout(1500)
    return page, problems


def check_page(browser, server, path: str, expected_charts: int) -> list[dict]:
    page, problems = open_page(browser, server, path)
    try:
        charts = page.evaluate(CHARTS_JS)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = path.strip("/").replace("/", "-") or "overview"
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        errors = page.locator("text=/Error (in|running|loading)/").count()
    finally:
        page.close()
    assert not problems, f"{path}: {problems}"
    assert errors == 0, f"{path}: an Evidence error message is on the page"
    assert len(charts) == expected_charts, f"{path}: {[c['title'] for c in charts]}"
    for chart in charts:
        assert chart["visible"], f"{path}: chart {chart['title']!r} has no size"
        assert chart["series"], f"{path}: chart {chart['title']!r} has no series"
        empty = [s["name"] for s in chart["series"] if s["points"] == 0]
        assert not empty, f"{path}: chart {chart['title']!r}: series without data points {empty}"
    return charts


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_loads_without_errors_and_draws_its_charts(site, browser, server, path):
    charts = check_page(browser, server, path, PAGES[path])
    assert sum(s["points"] for c in charts for s in c["series"]) > 0


def test_each_athlete_has_a_page_linked_from_the_athletes_page(site, browser, server):
    people = athletes(site)
    assert len(people) == 2
    page, problems = open_page(browser, server, "/athletes")
    try:
        links = {
            a.inner_text().strip(): a.get_attribute("href") for a in page.locator("ul.athlete-links a").all()
        }
    finally:
        page.close()
    assert not problems
    assert links == {p["name"]: f"/athletes/{p['user_id']}" for p in people}
    for person in people:
        check_page(browser, server, f"/athletes/{person['user_id']}", ATHLETE_PAGE_CHARTS)


def half_up(value: float, digits: int = 0) -> float:
    """Rounding as the report's SQL rounds: half away from zero (values here are positive)."""
    scale = 10**digits
    return math.floor(value * scale + 0.5) / scale


def hours_and_minutes(hours: float | None) -> str:
    if hours is None:
        return NO_VALUE
    minutes = int(half_up(hours * 60))
    return f"{minutes // 60}h {minutes % 60:02d}m"


def expected_row(day: dict) -> dict[str, str]:
    def whole(value, unit: str) -> str:
        return NO_VALUE if value is None else f"{int(half_up(value))}{unit}"

    return {
        "recovery": whole(day["recovery_score"], "%"),
        "hrv": whole(day["hrv_rmssd_milli"], " ms"),
        "hrv_baseline_30d": whole(day["hrv_baseline_30d"], " ms"),
        "rhr": whole(day["resting_heart_rate"], " bpm"),
        "rhr_baseline_30d": whole(day["rhr_baseline_30d"], " bpm"),
        "sleep": hours_and_minutes(day["hours_asleep"]),
        "need": hours_and_minutes(day["hours_needed"]),
        "sleep_performance": whole(day["sleep_performance_percentage"], "%"),
        "strain": NO_VALUE if day["strain"] is None else f"{half_up(day['strain'], 1):.1f}",
        "zone": day["recovery_zone"] or "none",
    }


def test_overview_shows_the_marts_numbers_for_the_last_seven_days(site, browser, server):
    first = athletes(site)[0]
    days = marts(
        site.warehouse,
        """
        select * from marts.fct_daily_health
        where user_id = ?
            and date_day > (select max(date_day) from marts.fct_daily_health where user_id = ?) - 7
        order by date_day
        """,
        [first["user_id"], first["user_id"]],
    )
    assert len(days) == 7
    page, problems = open_page(browser, server, "/")
    try:
        rows = page.locator("[data-testid=last-7-days] tbody tr")
        shown = {}
        for i in range(rows.count()):
            row = rows.nth(i)
            cells = {c.get_attribute("data-field"): c.inner_text().strip() for c in row.locator("td").all()}
            cells["zone"] = row.locator("td[data-field=recovery]").get_attribute("data-zone")
            shown[row.get_attribute("data-day")] = {k: v for k, v in cells.items() if k != "day"}
        latest = page.locator("[data-testid=latest]").inner_text()
    finally:
        page.close()
    assert not problems
    expected = {day["date_day"].isoformat(): expected_row(day) for day in days}
    assert shown == expected
    latest_scored = [d for d in days if d["recovery_score"] is not None][-1]
    assert f"{int(half_up(latest_scored['recovery_score']))}%" in latest


def test_the_warehouse_has_a_gap_day_and_the_report_copes(site):
    """The cycle removed from the sandbox leaves a day without a cycle inside the athlete's history."""
    gaps = marts(site.warehouse, "select count(*) as n from marts.fct_daily_health where not has_cycle")
    assert gaps[0]["n"] >= 1


def test_build_time_and_a_screenshot_for_the_readme(site):
    print(f"\nreport build (evidence sources + build, npm packages installed): {site.build_seconds:.0f} s")
    overview = ARTIFACTS / "overview.png"
    assert overview.exists()
    assert overview.stat().st_size > 10_000
    shutil.copy(overview, ARTIFACTS / "readme-overview.png")


def test_night_page_draws_the_nights_heart_rate_over_asleep_and_awake_bands(site, browser, server):
    """The night picker opens on the first athlete's latest night: its heart-rate curve has every sample of
    that night, over asleep and awake bands; the skin-temperature chart has each main night with a
    baseline."""
    first = athletes(site)[0]
    (night,) = marts(
        site.warehouse,
        """
        select v.sleep_id, count(s.heart_rate_bpm) as samples
        from marts.fct_sleep_vitals as v
        join staging.stg_whoop__sleep_signals as s on s.sleep_id = v.sleep_id
        where v.user_id = ?
        group by v.sleep_id, v.date_day, v.start_at
        order by v.date_day desc, v.start_at desc
        limit 1
        """,
        [first["user_id"]],
    )
    (deviations,) = marts(
        site.warehouse,
        "select count(*) as n from marts.fct_sleep_vitals"
        " where user_id = ? and not is_nap and skin_temp_deviation_celsius is not null",
        [first["user_id"]],
    )
    charts = {c["title"]: c for c in check_page(browser, server, "/nights", PAGES["/nights"])}
    curve = charts["Heart rate through the night"]["series"]
    assert [s["points"] for s in curve if not s["areas"]] == [night["samples"]]
    bands = {area for s in curve for area in s["areas"]}
    assert bands == {"Asleep", "Awake"}
    trend = charts["Skin temperature against the 30-night baseline"]["series"]
    assert [s["points"] for s in trend if s["name"] == "Night"] == [deviations["n"]] != [0]
