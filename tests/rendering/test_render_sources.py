"""Loading template sources and composing them with the layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.errors import NotFound, TemplateError
from mailer.rendering import (
    TEMPLATES_DIR,
    TemplateSource,
    compile_template,
    load_template,
    render_email,
    sample_context,
)
from mailer.rendering.layout import compose


def test_templates_dir_is_the_repository_templates() -> None:
    assert Path(__file__).resolve().parents[2] / "templates" / "emails" == TEMPLATES_DIR
    assert (TEMPLATES_DIR / "base.html").is_file()


def test_load_reads_step_and_layout() -> None:
    source = load_template("cart/step1")
    assert source.name == "cart/step1"
    assert source.html.startswith('{% extends "base.html" %}')
    assert source.text.startswith('{% extends "base.txt" %}')
    assert (
        "{{ unsubscribe_url }}" in source.layout_html
        and "{{ unsubscribe_url }}" in source.layout_text
    )
    assert len(source.version) == 64 and source.version == load_template("cart/step1").version


@pytest.mark.parametrize(
    "name",
    [
        "../secrets",
        "cart/../../etc/passwd",
        "/etc/passwd",
        "cart/step1.html",
        "",
        "cart//step1",
        "Cart\\step1",
        ".hidden",
    ],
)
def test_names_that_could_leave_the_directory_are_refused(name: str) -> None:
    with pytest.raises(NotFound):
        load_template(name)


def test_a_missing_template_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_template("cart/step9")
    with pytest.raises(NotFound):
        load_template("cart/step1", templates_dir=tmp_path)


def test_a_symlink_out_of_the_directory_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.html").write_text("secret")
    (outside / "x.txt").write_text("secret")
    root = tmp_path / "emails"
    root.mkdir()
    (root / "evil").symlink_to(outside)
    with pytest.raises(NotFound):
        load_template("evil/x", templates_dir=root)


def test_overrides_win_over_files_and_change_the_version() -> None:
    stock = load_template("cart/step1")
    step = ('{% extends "base.html" %}{% block content %}<p>Custom</p>{% endblock %}', stock.text)
    edited = load_template("cart/step1", overrides={"cart/step1": step})
    assert edited.html == step[0] and edited.layout_html == stock.layout_html
    assert edited.version != stock.version

    layout = (stock.layout_html.replace("#2f5d50", "#aa3300"), stock.layout_text)
    rebranded = load_template("cart/step1", overrides={"base": layout})
    assert rebranded.html == stock.html and rebranded.version != stock.version
    email = render_email(compile_template(rebranded), "s", sample_context(template="cart/step1"))
    assert "#aa3300" in email.html


def test_blocks_replace_the_layouts_and_the_rest_of_the_layout_stays() -> None:
    layout = "<head>{% block title %}Default{% endblock %}</head>\n<body>{% block content %}{% endblock %}</body>"
    child = '{% extends "base.html" %}\n{# a note #}\n{% block content %}\n<p>Mine</p>\n{% endblock %}\n'
    composed = compose(child, "step.html", layout, "base.html")
    assert composed.source == (
        "<head>{% block title %}Default{% endblock %}</head>\n<body>{% block content %}\n<p>Mine</p>\n{% endblock %}</body>"
    )
    assert composed.origin(1) == ("base.html", 1)
    assert composed.origin(3) == ("step.html", 4)


def test_a_template_without_extends_stands_alone() -> None:
    composed = compose("<p>{{ x }}</p>", "solo.html", "<layout>", "base.html")
    assert composed.source == "<p>{{ x }}</p>"


@pytest.mark.parametrize(
    ("child", "words", "line"),
    [
        (
            '{% extends "base.html" %}\n<p>stray</p>\n{% block content %}{% endblock %}',
            "only {% block %}s",
            2,
        ),
        ('{% extends "base.html" %}\n{% set x = 1 %}', "only {% block %}s", 2),
        ('{% extends "base.html" %}\n{% block nothing %}x{% endblock %}', "no block 'nothing'", 2),
        ('{% extends "other.html" %}', 'only "base.html" can be extended', 1),
        ('{% extends "base.html" %}\n{% block content %}\nx', "never closed", 2),
        (
            '{% extends "base.html" %}\n{% block content %}{% endblock %}\n{% block content %}{% endblock %}',
            "defined twice",
            3,
        ),
    ],
)
def test_malformed_step_templates_are_refused_with_their_line(
    child: str, words: str, line: int
) -> None:
    with pytest.raises(TemplateError, match=words) as caught:
        compose(child, "step.html", "{% block content %}{% endblock %}", "base.html")
    assert caught.value.template == "step.html" and caught.value.line == line


def test_extending_without_a_layout_is_a_clear_error() -> None:
    source = TemplateSource(
        "solo", '{% extends "base.html" %}{% block content %}{% endblock %}', "text"
    )
    with pytest.raises(TemplateError, match="no layout"):
        compile_template(source)
