"""Campaign definitions as data: load campaigns/*.yaml and validate each one strictly."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import yaml

from mailer.errors import CampaignDefinitionError
from mailer.models.campaign import AUDIENCES, CAMPAIGN_KINDS

# The product defaults live at the repository root, beside templates/.
CAMPAIGNS_DIR = Path(__file__).resolve().parents[2] / "campaigns"

MAX_HOLDOUT_PERCENT = 50  # beyond half, the control group costs more than the answer is worth
MAX_DISCOUNT_PERCENT = 90
MAX_PRIORITY = 1000
MAX_STEPS = 10
MAX_DURATION_MINUTES = 365 * 24 * 60
MAX_TEXT_CHARS = 64_000  # a definition is a page of YAML; anything larger is a mistake
# The widths of the columns these values are stored in (mailer.models.campaign).
MAX_KEY_CHARS = 64
MAX_NAME_CHARS = 200
MAX_SUBJECT_CHARS = 300
MAX_TEMPLATE_CHARS = 200

_MINUTES_PER_UNIT = {"d": 24 * 60, "h": 60, "m": 1}
# Units largest first, each at most once: "1d12h", "90m", "2h 30m".
_DURATION_RE = re.compile(r"(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*(?:(?P<m>\d+)\s*m)?")
_KEY_RE = re.compile(r"[a-z0-9][a-z0-9_]*")
_TEMPLATE_SEGMENT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class StepDefinition:
    """One email of a campaign as the YAML defines it; `index` is 1-based."""

    index: int
    name: str
    delay_minutes: int
    window_minutes: int  # due at delay + a per-contact time in [0, window]
    tier: int | None  # win-back only: the lifecycle tier (1-based) this email is for
    discount_percent: int
    subject: str  # a Jinja string, rendered per contact
    template: str  # a template name such as "cart/step1"; the rendering package resolves it
    requires_consent: bool  # False: eligible for the store's first-cart-reminder exception


@dataclass(frozen=True)
class CampaignDefinition:
    """A validated campaign definition; `key` is the file's stem and names the campaign."""

    key: str
    name: str
    kind: str
    audience: str
    holdout_percent: int
    priority: int
    enabled: bool
    steps: tuple[StepDefinition, ...]

    @property
    def templates(self) -> tuple[str, ...]:
        """The template names the steps use, in step order."""
        return tuple(step.template for step in self.steps)


def parse_duration(text: str) -> int:
    """Minutes in a human duration such as "0", "30m", "24h", "5d" or "1d12h"; ValueError if not."""
    if not isinstance(text, str):
        raise ValueError(f"a duration is text such as '30m', '24h' or '1d12h', got {text!r}")
    value = text.strip().lower()
    if value == "0":
        return 0
    match = _DURATION_RE.fullmatch(value)
    if not value or match is None or not any(match.groupdict().values()):
        if value.isdigit():
            # A bare number is ambiguous (minutes? hours?), so it needs a unit.
            raise ValueError(f"a duration needs a unit (m, h or d) unless it is 0, got {text!r}")
        raise ValueError(f"a duration is like '30m', '24h', '5d' or '1d12h', got {text!r}")
    return sum(
        int(amount) * _MINUTES_PER_UNIT[unit]
        for unit, amount in match.groupdict().items()
        if amount is not None
    )


def definition_hash(defn: CampaignDefinition) -> str:
    """SHA-256 of the definition's canonical JSON: equal definitions, equal hashes."""
    canonical = json.dumps(
        dataclasses.asdict(defn), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_definitions(directory: Path = CAMPAIGNS_DIR) -> dict[str, CampaignDefinition]:
    """Every `*.yaml` in `directory`, validated, keyed by file stem."""
    if not directory.is_dir():
        raise CampaignDefinitionError(f"{directory}: campaign directory not found")
    definitions: dict[str, CampaignDefinition] = {}
    for path in sorted(directory.glob("*.yaml")):
        # Named as the marketer sees it ("campaigns/winback.yaml"), not by absolute path.
        source = f"{directory.name}/{path.name}"
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise CampaignDefinitionError(f"{source}: not UTF-8 text ({exc.reason})") from exc
        definition = parse_definition(text, source)
        definitions[definition.key] = definition
    return definitions


def template_names(definitions: Iterable[CampaignDefinition]) -> list[str]:
    """The distinct template names these definitions use, sorted (for the renderer to check)."""
    return sorted({name for defn in definitions for name in defn.templates})


def parse_definition(text: str, source: str) -> CampaignDefinition:
    """Validate one YAML definition; `source` (its file name) gives the key and names errors."""
    key = PurePath(source).stem
    if len(key) > MAX_KEY_CHARS or not _KEY_RE.fullmatch(key):
        raise CampaignDefinitionError(
            f"{source}: file name: the campaign key {key!r} must be lower-case letters, digits "
            f"and underscores, at most {MAX_KEY_CHARS} characters"
        )
    if len(text) > MAX_TEXT_CHARS:
        raise CampaignDefinitionError(
            f"{source}: the file is larger than {MAX_TEXT_CHARS} characters"
        )
    data = _load_yaml(text, source)
    return _Validator(source).campaign(key, data)


# --- YAML -------------------------------------------------------------------------------------


def _load_yaml(text: str, source: str) -> Any:
    try:
        # safe_load silently keeps the last of two equal keys, so look at the node tree first:
        # composing builds no Python objects, it only parses.
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None:
            _refuse_duplicate_keys(root, "", source)
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        raise CampaignDefinitionError(
            f"{source}: {where}YAML syntax error: {problem}{context}"
        ) from exc
    except yaml.YAMLError as exc:
        raise CampaignDefinitionError(f"{source}: YAML syntax error: {exc}") from exc


def _refuse_duplicate_keys(node: yaml.Node, path: str, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = key_node.value
            child = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise CampaignDefinitionError(
                    f"{source}: {child}: written twice (lines {first_line[key]} and {line}); "
                    "keep one"
                )
            first_line[key] = line
            _refuse_duplicate_keys(value_node, child, source)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value, start=1):
            _refuse_duplicate_keys(item, f"{path}[{position}]", source)


# --- validation -------------------------------------------------------------------------------

# Key → required? The YAML files document each key for the marketer.
_CAMPAIGN_KEYS = {
    "name": True,
    "kind": True,
    "enabled": False,
    "priority": False,
    "audience": False,
    "holdout_percent": False,
    "steps": True,
}
_STEP_KEYS = {
    "name": False,
    "delay": False,
    "window": False,
    "tier": False,
    "discount_percent": False,
    "subject": True,
    "template": True,
    "requires_consent": False,
}


def _shown(value: Any) -> str:
    """A value as the error message shows it: YAML words for YAML values, repr otherwise."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggestion(unknown: object, allowed: Iterable[str]) -> str:
    # Compare with each key and with its first word too, so "dicsount" finds "discount_percent".
    candidates: dict[str, str] = {}
    for name in allowed:
        candidates[name] = name
        candidates.setdefault(name.split("_")[0], name)
    close = difflib.get_close_matches(str(unknown).lower(), list(candidates), n=1, cutoff=0.7)
    return f" (did you mean {candidates[close[0]]!r}?)" if close else ""


class _Validator:
    """Reads one parsed YAML document into a CampaignDefinition, failing on the first mistake."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, reason: str) -> CampaignDefinitionError:
        return CampaignDefinitionError(f"{self.source}: {path}: {reason}")

    # Each checker takes the value and its key path and returns the typed value.

    def mapping(self, value: Any, path: str, keys: Mapping[str, bool], what: str) -> dict:
        if not isinstance(value, dict):
            where = f"{self.source}: {path}: " if path else f"{self.source}: "
            raise CampaignDefinitionError(
                f"{where}must be a mapping of {what}, got {_shown(value)}"
            )
        prefix = f"{path}." if path else ""
        for key in value:
            if key not in keys:
                allowed = ", ".join(keys)
                raise self.fail(
                    f"{prefix}{key}",
                    f"unknown key{_suggestion(key, keys)}; allowed keys are {allowed}",
                )
        for key, required in keys.items():
            if required and key not in value:
                raise self.fail(f"{prefix}{key}", "required")
        return value

    def text(self, value: Any, path: str, max_chars: int) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"must be non-empty text, got {_shown(value)}")
        if len(value) > max_chars:
            raise self.fail(path, f"must be at most {max_chars} characters, got {len(value)}")
        if "\n" in value or "\r" in value:
            raise self.fail(path, "must be a single line")
        return value.strip()

    def integer(self, value: Any, path: str, low: int, high: int) -> int:
        # bool is an int subclass in Python, but `true` is no percentage.
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(path, f"must be an integer from {low} to {high}, got {_shown(value)}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, got {_shown(value)}")
        return value

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str:
        if value not in choices or not isinstance(value, str):
            allowed = ", ".join(repr(c) for c in choices)
            raise self.fail(path, f"must be one of {allowed}, got {_shown(value)}")
        return value

    def duration(self, value: Any, path: str) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value == 0:
            return 0  # an unquoted `0` is still plainly "no delay"
        if not isinstance(value, str):
            raise self.fail(
                path, f"must be a duration such as '30m', '24h' or '1d12h', got {_shown(value)}"
            )
        try:
            minutes = parse_duration(value)
        except ValueError as exc:
            raise self.fail(path, f"must be a duration: {exc}") from None
        if minutes > MAX_DURATION_MINUTES:
            raise self.fail(path, f"must be at most 365d, got {value!r}")
        return minutes

    def template(self, value: Any, path: str) -> str:
        name = self.text(value, path, MAX_TEMPLATE_CHARS)
        segments = name.split("/")
        if any(seg in (".", "..") or not _TEMPLATE_SEGMENT_RE.fullmatch(seg) for seg in segments):
            raise self.fail(
                path,
                "must be a relative template name like 'cart/step1' (letters, digits, '_', '-', "
                f"'.' and '/'; no leading '/', no '..'), got {value!r}",
            )
        return name

    # The document.

    def campaign(self, key: str, data: Any) -> CampaignDefinition:
        data = self.mapping(data, "", _CAMPAIGN_KEYS, "campaign settings")
        name = self.text(data["name"], "name", MAX_NAME_CHARS)
        kind = self.choice(data["kind"], "kind", CAMPAIGN_KINDS)
        enabled = self.boolean(data.get("enabled", True), "enabled")
        priority = self.integer(data.get("priority", 0), "priority", -MAX_PRIORITY, MAX_PRIORITY)
        audience = self.choice(data.get("audience", "all"), "audience", AUDIENCES)
        holdout = self.integer(
            data.get("holdout_percent", 0), "holdout_percent", 0, MAX_HOLDOUT_PERCENT
        )
        raw_steps = data["steps"]
        if not isinstance(raw_steps, list) or not 1 <= len(raw_steps) <= MAX_STEPS:
            raise self.fail(
                "steps", f"must be a list of 1 to {MAX_STEPS} steps, got {_shown(raw_steps)}"
            )
        steps = tuple(
            self.step(raw, position, kind) for position, raw in enumerate(raw_steps, start=1)
        )
        self.check_sequence(kind, steps)
        return CampaignDefinition(
            key=key,
            name=name,
            kind=kind,
            audience=audience,
            holdout_percent=holdout,
            priority=priority,
            enabled=enabled,
            steps=steps,
        )

    def step(self, raw: Any, index: int, kind: str) -> StepDefinition:
        path = f"steps[{index}]"
        raw = self.mapping(raw, path, _STEP_KEYS, "step settings")
        name = self.text(raw.get("name", f"Step {index}"), f"{path}.name", MAX_NAME_CHARS)
        delay = self.duration(raw.get("delay", "0"), f"{path}.delay")
        window = self.duration(raw.get("window", "0"), f"{path}.window")
        tier: int | None = None
        if kind == "winback":
            if "tier" not in raw:
                raise self.fail(f"{path}.tier", "required for a winback step")
            tier = self.integer(raw["tier"], f"{path}.tier", 1, MAX_STEPS)
        elif "tier" in raw:
            raise self.fail(f"{path}.tier", "only winback steps have a tier")
        discount = self.integer(
            raw.get("discount_percent", 0), f"{path}.discount_percent", 0, MAX_DISCOUNT_PERCENT
        )
        subject = self.text(raw["subject"], f"{path}.subject", MAX_SUBJECT_CHARS)
        template = self.template(raw["template"], f"{path}.template")
        requires_consent = self.boolean(
            raw.get("requires_consent", True), f"{path}.requires_consent"
        )
        if not requires_consent and not (kind == "abandoned_cart" and index == 1):
            # Only the first cart reminder may rely on the store's no-consent exception (DESIGN §3).
            raise self.fail(
                f"{path}.requires_consent",
                "only the first abandoned-cart reminder may go without marketing consent",
            )
        return StepDefinition(
            index=index,
            name=name,
            delay_minutes=delay,
            window_minutes=window,
            tier=tier,
            discount_percent=discount,
            subject=subject,
            template=template,
            requires_consent=requires_consent,
        )

    def check_sequence(self, kind: str, steps: tuple[StepDefinition, ...]) -> None:
        if kind == "winback":
            # Step N is tier N's email: the engine looks a step up by the tier a contact enters.
            seen: dict[int, int] = {}
            for step in steps:
                assert step.tier is not None  # step() required it
                path = f"steps[{step.index}].tier"
                if step.tier in seen:
                    raise self.fail(
                        path, f"tier {step.tier} is already used by steps[{seen[step.tier]}]"
                    )
                if step.tier != step.index:
                    raise self.fail(
                        path,
                        f"must be {step.index}: tiers go 1, 2, 3... in step order, got {step.tier}",
                    )
                seen[step.tier] = step.index
        else:
            # Cart reminders are one sequence from the moment of abandonment.
            for before, step in zip(steps, steps[1:], strict=False):
                if step.delay_minutes < before.delay_minutes:
                    raise self.fail(
                        f"steps[{step.index}].delay",
                        f"must not be earlier than steps[{before.index}].delay "
                        f"({_format_minutes(before.delay_minutes)}), "
                        f"got {_format_minutes(step.delay_minutes)}",
                    )


def _format_minutes(minutes: int) -> str:
    if minutes == 0:
        return "0"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "m")) if n)
