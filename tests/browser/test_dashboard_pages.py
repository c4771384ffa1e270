"""Every dashboard page opens in headless Chromium without script errors, for the owner and the marketer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from tests.browser.dashboard_fixtures import (  # noqa: F401  (fixtures)
    Dashboard,
    dashboard_fixture,
    dashboard_pages,
    log_in,
    shoot_fixture,
)


def visit_all(page: Page, problems: Any, board: Dashboard, role: str, shoot: Callable[[Page, str], Path]) -> None:
    """Open each page, check it answered 200 with no script error, and keep its screenshot."""
    for name, path in dashboard_pages(board):
        response = page.goto(board.url + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        page.wait_for_load_state("networkidle")
        if name.startswith("template-"):
            page.wait_for_selector("#template-editor[data-preview-state=ready]")
        assert problems.page_errors == [], (path, problems.page_errors)
        assert problems.console_errors == [], (path, problems.console_errors)
        shoot(page, f"{role}-{name}")


def test_the_owner_opens_every_page_without_errors(dashboard: Dashboard, watched_page, shoot) -> None:
    page, problems = watched_page
    log_in(page, dashboard, dashboard.seeded.owner)
    visit_all(page, problems, dashboard, "owner", shoot)
    page.goto(dashboard.url + "/settings")
    assert page.locator("#cost_per_email").count() == 1
    assert page.locator("#keys").count() == 1


def test_the_marketer_opens_every_page_and_never_sees_keys_or_costs(dashboard: Dashboard, watched_page, shoot) -> None:
    page, problems = watched_page
    log_in(page, dashboard, dashboard.seeded.marketer)
    visit_all(page, problems, dashboard, "marketer", shoot)
    page.goto(dashboard.url + "/settings")
    assert page.locator("#cost_per_email").count() == 0
    assert page.locator("#keys").count() == 0
    assert "sk_" not in page.content()
    # The page hides the forms; the server refuses them too.
    token = page.locator("input[name=csrf_token]").first.input_value()
    for path in ("/settings/keys", "/settings/costs"):
        status = page.evaluate(
            """([path, token]) => fetch(path, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
                 body: "csrf_token=" + encodeURIComponent(token) + "&key=secret&cost_per_email=0"}).then(r => r.status)""",
            [path, token],
        )
        assert status == 403, path
    assert problems.page_errors == []


def test_the_report_draws_its_chart_from_the_days_figures(dashboard: Dashboard, watched_page, shoot) -> None:
    page, problems = watched_page
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, dashboard, dashboard.seeded.owner)
    page.wait_for_load_state("networkidle")
    chart = page.evaluate("""() => {
        const chart = Chart.getChart("report-chart");
        return {labels: chart.data.labels.length, sets: chart.data.datasets.map(d => [d.label, d.data.reduce((a, b) => a + b, 0)])};
    }""")
    assert chart["labels"] == 30
    totals = dict(chart["sets"])
    assert totals["Sent"] == int(page.locator("[data-metric=sent]").inner_text().replace(",", ""))
    assert 0 < totals["Clicked"] <= totals["Opened"] <= totals["Sent"]
    assert totals["Revenue"] > 0
    assert "5 days" in page.locator(".note").inner_text()
    assert page.locator("[data-metric=lift]").count() == 1  # the win-back campaign holds 10 % out
    assert problems.console_errors == [] and problems.page_errors == []
    shoot(page, "report-wide")


def test_a_new_store_is_shown_how_to_start(dashboard: Dashboard, watched_page, shoot) -> None:
    page, problems = watched_page
    log_in(page, dashboard, dashboard.seeded.new_owner)
    text = page.locator("main").inner_text()
    assert "Install the tracking snippet" in text
    assert "snippet.js" in text and "data-key" in text
    assert f"mailer import orders --store {dashboard.seeded.new_store_id}" in text
    assert problems.console_errors == [] and problems.page_errors == []
    shoot(page, "new-store")
