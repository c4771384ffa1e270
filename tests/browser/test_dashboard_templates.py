"""The template editor in Chromium: the live preview follows edits, errors name their line, saving and test sends work."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from mailer.templates_store import template_overrides
from tests.browser.dashboard_fixtures import Dashboard, dashboard_fixture, log_in, shoot_fixture  # noqa: F401  (fixtures)

NEW_HEADING = "Fresh linen, still in your cart"


def set_source(page: Page, panel: str, old: str, new: str) -> None:
    """Replace `old` by `new` in a source, through its CodeMirror's own API, as typing would."""
    changed = page.evaluate(
        """([panel, old, replacement]) => {
            const editor = document.querySelector(`[data-panel=${panel}] .CodeMirror`).CodeMirror;
            const source = editor.getValue();
            editor.setValue(source.replace(old, replacement));
            return source.includes(old);
        }""",
        [panel, old, new],
    )
    assert changed, f"{old!r} is not in the {panel} source"


def wait_ready(page: Page) -> None:
    """Wait until the preview frame shows the latest edit."""
    page.wait_for_selector("#template-editor[data-preview-state=ready]")


def test_the_preview_follows_edits_and_a_test_send_reaches_the_smtp_server(dashboard: Dashboard, watched_page, shoot) -> None:
    page, problems = watched_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.set_viewport_size({"width": 1440, "height": 1000})
    log_in(page, dashboard, dashboard.seeded.marketer)
    page.goto(f"{dashboard.url}/templates/cart/step2")
    wait_ready(page)
    assert page.get_attribute("#preview-frame", "sandbox") == ""  # no allow-same-origin, no scripts
    preview = page.frame_locator("#preview-frame")
    expect(preview.locator("h1")).to_have_text("Still thinking it over?")
    expect(preview.locator("body")).to_contain_text("Hi Sam,")  # the sample contact
    expect(preview.locator("body")).to_contain_text("Linen Throw Pillow, Sage")  # the sample cart

    # An edit shows up in the preview; markup that would run script in the dashboard stays inert.
    set_source(page, "html", "Still thinking it over?</h1>", f"{NEW_HEADING}</h1><img src=x onerror=alert(1)>")
    expect(preview.locator("h1")).to_have_text(NEW_HEADING)
    page.fill("#subject", "Your cart misses you, {{ contact.first_name }}")
    expect(page.locator("#preview-subject")).to_have_text("Your cart misses you, Sam")
    wait_ready(page)
    shoot(page, "template-editing")

    # A syntax error is reported with its line, and the line is marked.
    set_source(page, "html", '{{ contact.first_name or "there" }}', '{{ contact.first_name or "there" }')
    expect(page.locator("#template-error")).to_be_visible()
    expect(page.locator("#template-error")).to_contain_text("cart/step2.html, line 6")
    expect(page.locator("[data-panel=html] .CodeMirror .line-error")).to_have_count(1)
    shoot(page, "template-error")
    set_source(page, "html", '{{ contact.first_name or "there" }', '{{ contact.first_name or "there" }}')
    wait_ready(page)
    expect(page.locator("#template-error")).to_be_hidden()

    # Saving keeps a version that the sender will use.
    page.click("#save-template")
    expect(page.locator(".flash-success")).to_contain_text("Saved version 1 of cart/step2")
    with dashboard.database.transaction() as session:
        html, _text = template_overrides(session, dashboard.seeded.store_id)["cart/step2"]
    assert NEW_HEADING in html
    wait_ready(page)

    # A test send goes through the configured transport: the loopback SMTP server.
    page.fill("#test-to", "maya@inbox.example")
    page.click("#test-send-button")
    expect(page.locator("#test-send-status")).to_contain_text("Sent to maya@inbox.example")
    received = dashboard.sink.wait_for(1)[0]
    assert received.rcpt_tos == ["maya@inbox.example"]
    assert received.message["Subject"] == "Your cart misses you, Sam"
    assert NEW_HEADING in received.message.get_body(preferencelist=("html",)).get_content()

    assert dialogs == []
    assert problems.page_errors == []
    # The only complaints are Chromium refusing the injected handler inside the sandboxed frame.
    blocked = [e for e in problems.console_errors if e.startswith("Blocked script execution in 'about:srcdoc'")]
    assert blocked and blocked == problems.console_errors


def test_a_template_that_would_break_emails_is_not_saved(dashboard: Dashboard, watched_page) -> None:
    page, problems = watched_page
    log_in(page, dashboard, dashboard.seeded.owner)
    page.goto(f"{dashboard.url}/templates/winback/tier1")
    wait_ready(page)
    set_source(page, "html", "{% block content %}", "{% block content %}{% for %}")
    expect(page.locator("#template-error")).to_be_visible()
    page.click("#save-template")
    expect(page.locator("#template-error")).to_contain_text("winback/tier1.html, line")
    with dashboard.database.transaction() as session:
        assert "winback/tier1" not in template_overrides(session, dashboard.seeded.store_id)
    assert problems.page_errors == []
