"""What visitors send (markup as a name, `javascript:` as a URL) stays inert text on every dashboard page."""

from __future__ import annotations

from playwright.sync_api import Dialog

from tests.browser.dashboard_fixtures import (  # noqa: F401  (fixture)
    HOSTILE_NAME,
    HOSTILE_URL,
    Dashboard,
    dashboard_fixture,
    dashboard_pages,
    log_in,
)


def test_visitor_strings_never_run_on_any_page(dashboard: Dashboard, watched_page) -> None:
    page, problems = watched_page
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    log_in(page, dashboard, dashboard.seeded.owner)
    hostile = f"/contacts/{dashboard.seeded.hostile_contact_id}"
    for _name, path in [*dashboard_pages(dashboard), ("hostile-search", "/contacts?q=" + "%3Cimg"), ("hostile", hostile)]:
        page.goto(dashboard.url + path)
        page.wait_for_load_state("networkidle")
        # Markup from visitors never became elements…
        assert page.locator("img[src=x], svg[onload], script:not([src]):not([type='application/json'])").count() == 0, path
        # …and no link leads to javascript:.
        assert page.locator("a[href^='javascript:' i]").count() == 0, path
    assert dialogs == []

    page.goto(dashboard.url + hostile)
    heading = page.locator("h1").inner_text()
    assert HOSTILE_NAME in heading  # shown to the store as the text it is
    assert HOSTILE_URL in page.locator("main").inner_text()
    page.goto(dashboard.url + "/contacts?q=%3Cimg")
    assert HOSTILE_NAME in page.locator("table.contacts").inner_text()
    assert problems.page_errors == [] and problems.console_errors == []
