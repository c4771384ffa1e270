"""Showing a sent email in the dashboard never counts as an open or a click."""

from mailer.rendering.links import track_links
from mailer.tracking.preview import inert_preview

SECRET = "k" * 32


def test_preview_drops_the_pixel_and_untracks_links() -> None:
    sent = track_links('<html><body><a href="https://shop.example/a?x=1&amp;y=2">A</a></body></html>',
                       message_id=5, base_url="https://m.test", secret=SECRET)
    stored = {(5, position): url for position, url, _kind in sent.links}
    preview = inert_preview(sent.html, SECRET, lambda m, p: stored.get((m, p)))
    assert "/t/o/" not in preview and "/t/c/" not in preview
    assert 'href="https://shop.example/a?x=1&amp;y=2"' in preview
    assert inert_preview('<a href="https://m.test/t/c/forged">x</a>', SECRET, lambda m, p: None) == '<a href="#">x</a>'
