"""Campaign definitions: durations, the shipped YAML, and the errors a marketer would see."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mailer.campaigns import (
    CAMPAIGNS_DIR,
    definition_hash,
    load_definitions,
    parse_definition,
    parse_duration,
    template_names,
)
from mailer.errors import CampaignDefinitionError

CART = """\
name: Cart
kind: abandoned_cart
priority: 100
steps:
  - delay: "0"
    discount_percent: 10
    template: cart/step1
    subject: "Hi"
    requires_consent: false
  - delay: 24h
    discount_percent: 15
    template: cart/step2
    subject: "Hi again"
"""

WINBACK = """\
name: Winback
kind: winback
audience: one_time
steps:
  - tier: 1
    discount_percent: 10
    template: winback/tier1
    subject: "One"
  - tier: 2
    discount_percent: 15
    template: winback/tier2
    subject: "Two"
  - tier: 3
    discount_percent: 20
    template: winback/tier3
    subject: "Three"
"""


def error_of(text: str, source: str = "campaigns/test.yaml") -> str:
    with pytest.raises(CampaignDefinitionError) as caught:
        parse_definition(text, source)
    return str(caught.value)


# --- parse_duration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("0", 0),
        ("30m", 30),
        ("24h", 1440),
        ("5d", 7200),
        ("1d12h", 2160),
        ("1d 12h 5m", 2165),
        ("2H", 120),
        (" 90m ", 90),
        ("0m", 0),
    ],
)
def test_parse_duration_reads_human_durations(text: str, minutes: int) -> None:
    assert parse_duration(text) == minutes


@pytest.mark.parametrize(
    "text", ["", " ", "abc", "5", "1.5h", "-5m", "12h1d", "1d1d", "5 days", "m"]
)
def test_parse_duration_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_parse_duration_asks_for_a_unit_on_a_bare_number() -> None:
    with pytest.raises(ValueError, match=r"needs a unit \(m, h or d\) unless it is 0, got '30'"):
        parse_duration("30")


# --- the shipped definitions ------------------------------------------------------------------


def test_shipped_definitions_load() -> None:
    definitions = load_definitions()
    assert set(definitions) == {"abandoned_cart", "winback"}

    cart = definitions["abandoned_cart"]
    assert (cart.name, cart.kind, cart.priority, cart.audience, cart.holdout_percent) == (
        "Abandoned cart",
        "abandoned_cart",
        100,
        "all",
        0,
    )
    assert [(s.delay_minutes, s.window_minutes, s.discount_percent) for s in cart.steps] == [
        (0, 0, 10),
        (24 * 60, 0, 15),
        (5 * 24 * 60, 2 * 24 * 60, 20),
    ]
    assert [s.requires_consent for s in cart.steps] == [False, True, True]
    assert cart.templates == ("cart/step1", "cart/step2", "cart/step3")
    assert all(s.tier is None for s in cart.steps)

    winback = definitions["winback"]
    assert (winback.kind, winback.priority, winback.audience) == ("winback", 10, "one_time")
    assert [(s.index, s.tier, s.discount_percent, s.delay_minutes) for s in winback.steps] == [
        (1, 1, 10, 0),
        (2, 2, 15, 0),
        (3, 3, 20, 0),
    ]
    assert winback.templates == ("winback/tier1", "winback/tier2", "winback/tier3")
    assert all(s.requires_consent for s in winback.steps)
    assert all("contact.first_name or" in s.subject for s in winback.steps)
    # Cart reminders take precedence over win-back.
    assert cart.priority > winback.priority


def test_template_names_lists_each_template_once() -> None:
    names = template_names(load_definitions().values())
    assert names == sorted(set(names))
    assert "cart/step1" in names and "winback/tier3" in names


def test_load_definitions_names_errors_by_directory_and_file(tmp_path: Path) -> None:
    directory = tmp_path / "campaigns"
    directory.mkdir()
    (directory / "winback.yaml").write_text(
        WINBACK.replace("discount_percent: 20", "discount_percent: lots")
    )
    with pytest.raises(CampaignDefinitionError) as caught:
        load_definitions(directory)
    assert str(caught.value) == (
        "campaigns/winback.yaml: steps[3].discount_percent: "
        "must be an integer from 0 to 90, got 'lots'"
    )


def test_load_definitions_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CampaignDefinitionError, match="campaign directory not found"):
        load_definitions(tmp_path / "nowhere")


def test_defaults_apply_when_optional_keys_are_left_out() -> None:
    defn = parse_definition(WINBACK, "campaigns/test.yaml")
    assert defn.key == "test"
    assert (defn.enabled, defn.priority, defn.holdout_percent) == (True, 0, 0)
    step = defn.steps[0]
    assert (step.name, step.delay_minutes, step.window_minutes, step.requires_consent) == (
        "Step 1",
        0,
        0,
        True,
    )


def test_definition_hash_is_stable_and_tracks_changes() -> None:
    defn = parse_definition(CART, "campaigns/cart.yaml")
    again = parse_definition(CART, "campaigns/cart.yaml")
    assert definition_hash(defn) == definition_hash(again)
    assert len(definition_hash(defn)) == 64
    changed = dataclasses.replace(defn, priority=99)
    assert definition_hash(changed) != definition_hash(defn)


def test_shipped_files_live_in_the_campaigns_directory() -> None:
    assert (CAMPAIGNS_DIR / "abandoned_cart.yaml").is_file()


# --- mistakes and their messages --------------------------------------------------------------


def test_unknown_key_is_named_with_a_suggestion() -> None:
    message = error_of(CART.replace("discount_percent: 15", "dicsount: 15"))
    assert message.startswith("campaigns/test.yaml: steps[2].dicsount: unknown key")
    assert "did you mean 'discount_percent'?" in message


def test_unknown_top_level_key() -> None:
    message = error_of(CART.replace("priority: 100", "prority: 100"))
    assert message.startswith(
        "campaigns/test.yaml: prority: unknown key (did you mean 'priority'?)"
    )


def test_missing_required_key() -> None:
    assert error_of(CART.replace("    template: cart/step2\n", "")) == (
        "campaigns/test.yaml: steps[2].template: required"
    )
    assert error_of(CART.replace("name: Cart\n", "")) == "campaigns/test.yaml: name: required"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "discount_percent: 15",
            "discount_percent: lots",
            "steps[2].discount_percent: must be an integer from 0 to 90, got 'lots'",
        ),
        (
            "discount_percent: 15",
            "discount_percent: true",
            "steps[2].discount_percent: must be an integer from 0 to 90, got true",
        ),
        (
            "discount_percent: 15",
            "discount_percent: 95",
            "steps[2].discount_percent: must be an integer from 0 to 90, got 95",
        ),
        (
            "priority: 100",
            "priority: 100\nholdout_percent: 60",
            "holdout_percent: must be an integer from 0 to 50, got 60",
        ),
        (
            "priority: 100",
            "priority: 100\nenabled: maybe",
            "enabled: must be true or false, got 'maybe'",
        ),
        (
            "kind: abandoned_cart",
            "kind: birthday",
            "kind: must be one of 'abandoned_cart', 'winback', got 'birthday'",
        ),
        (
            "priority: 100",
            "priority: 100\naudience: everyone",
            "audience: must be one of 'one_time', 'repeat', 'all', got 'everyone'",
        ),
        (
            'subject: "Hi again"',
            "subject: 42",
            "steps[2].subject: must be non-empty text, got 42",
        ),
        (
            'subject: "Hi again"',
            "subject:",
            "steps[2].subject: must be non-empty text, got nothing",
        ),
        (
            "delay: 24h",
            "delay: 24h\n    window: -1d",
            "steps[2].window: must be a duration: a duration is like '30m', '24h', '5d' or "
            "'1d12h', got '-1d'",
        ),
        (
            "delay: 24h",
            "delay: soon",
            "steps[2].delay: must be a duration: a duration is like '30m', '24h', '5d' or "
            "'1d12h', got 'soon'",
        ),
        (
            "delay: 24h",
            "delay: 24",
            "steps[2].delay: must be a duration such as '30m', '24h' or '1d12h', got 24",
        ),
        (
            "delay: 24h",
            "delay: 400d",
            "steps[2].delay: must be at most 365d, got '400d'",
        ),
        (
            "delay: 24h",
            "delay: 24h\n    tier: 2",
            "steps[2].tier: only winback steps have a tier",
        ),
        (
            'subject: "Hi again"',
            'subject: "Hi again"\n    requires_consent: false',
            "steps[2].requires_consent: only the first abandoned-cart reminder may go without "
            "marketing consent",
        ),
    ],
)
def test_bad_values_are_named_with_the_reason(old: str, new: str, expected: str) -> None:
    assert CART.count(old) == 1
    assert error_of(CART.replace(old, new)) == f"campaigns/test.yaml: {expected}"


def test_cart_delays_may_not_go_backwards() -> None:
    text = CART.replace('delay: "0"', "delay: 2d")
    assert error_of(text) == (
        "campaigns/test.yaml: steps[2].delay: must not be earlier than steps[1].delay (2d), got 1d"
    )


@pytest.mark.parametrize(
    "template",
    ["../secrets", "/etc/passwd", "cart/../../x", "cart//step1", "cart\\step1", "cart/step1/"],
)
def test_template_names_must_be_relative_paths(template: str) -> None:
    message = error_of(CART.replace("template: cart/step2", f"template: '{template}'"))
    assert message.startswith(
        "campaigns/test.yaml: steps[2].template: must be a relative template name"
    )


def test_steps_must_be_a_non_empty_list() -> None:
    text = CART[: CART.index("steps:")] + "steps: []\n"
    assert (
        error_of(text)
        == "campaigns/test.yaml: steps: must be a list of 1 to 10 steps, got an empty list"
    )


def test_a_step_must_be_a_mapping() -> None:
    text = CART[: CART.index("steps:")] + "steps:\n  - just text\n"
    assert error_of(text) == (
        "campaigns/test.yaml: steps[1]: must be a mapping of step settings, got 'just text'"
    )


def test_the_file_must_be_a_mapping() -> None:
    assert error_of("- a\n- b\n") == (
        "campaigns/test.yaml: must be a mapping of campaign settings, got a list"
    )
    assert error_of("") == (
        "campaigns/test.yaml: must be a mapping of campaign settings, got nothing"
    )


def test_winback_tier_missing() -> None:
    text = WINBACK.replace("  - tier: 2\n    discount_percent: 15", "  - discount_percent: 15")
    assert error_of(text) == "campaigns/test.yaml: steps[2].tier: required for a winback step"


def test_winback_tier_duplicated() -> None:
    text = WINBACK.replace("tier: 2", "tier: 1")
    assert error_of(text) == (
        "campaigns/test.yaml: steps[2].tier: tier 1 is already used by steps[1]"
    )


def test_winback_tiers_go_in_order_without_gaps() -> None:
    text = WINBACK.replace("tier: 3", "tier: 4")
    assert error_of(text) == (
        "campaigns/test.yaml: steps[3].tier: must be 3: tiers go 1, 2, 3... in step order, got 4"
    )


def test_winback_steps_always_need_consent() -> None:
    text = WINBACK.replace('subject: "One"', 'subject: "One"\n    requires_consent: false')
    assert error_of(text) == (
        "campaigns/test.yaml: steps[1].requires_consent: only the first abandoned-cart reminder "
        "may go without marketing consent"
    )


def test_yaml_syntax_error_names_file_and_line() -> None:
    text = CART.replace('subject: "Hi again"', 'subject: "Hi again')
    message = error_of(text)
    assert message.startswith("campaigns/test.yaml: line ")
    assert "YAML syntax error" in message


def test_yaml_syntax_error_line_number_is_exact() -> None:
    text = "name: Cart\nkind: [abandoned_cart\nsteps: []\n"
    message = error_of(text)
    assert message.startswith("campaigns/test.yaml: line 3, column 6: YAML syntax error: ")


def test_key_written_twice_is_refused() -> None:
    text = CART.replace("discount_percent: 15", "discount_percent: 15\n    discount_percent: 50")
    assert error_of(text) == (
        "campaigns/test.yaml: steps[2].discount_percent: written twice (lines 11 and 12); keep one"
    )


def test_python_tags_are_refused() -> None:
    text = CART.replace("name: Cart", "name: !!python/object/apply:os.system ['true']")
    message = error_of(text)
    assert message.startswith("campaigns/test.yaml: line 1, column 7: YAML syntax error:")


def test_file_name_must_make_a_usable_key() -> None:
    assert error_of(CART, "campaigns/Black Friday.yaml").startswith(
        "campaigns/Black Friday.yaml: file name: the campaign key 'Black Friday' must be"
    )
