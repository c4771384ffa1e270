"""Domain exceptions; the web layer maps them to HTTP statuses in one place."""

from __future__ import annotations


class MailerError(Exception):
    """Base of every error the domain raises on purpose."""

    status = 400

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(MailerError):
    """A setting is missing or malformed."""


class ValidationError(MailerError):
    """Input that does not fit the contract."""

    status = 400


class NotFound(MailerError):
    """The thing asked for does not exist (or belongs to another store)."""

    status = 404


class Unauthorized(MailerError):
    """No valid key or login."""

    status = 401


class Forbidden(MailerError):
    """A valid login without the right to this."""

    status = 403


class PayloadTooLarge(MailerError):
    """A request body over the limit."""

    status = 413


class RateLimited(MailerError):
    """Too many requests for one key."""

    status = 429


class CampaignDefinitionError(MailerError):
    """A campaign YAML file that does not validate; the message names file, key and reason."""


class TemplateError(MailerError):
    """A template that does not parse, or that tries to leave the sandbox."""

    def __init__(self, message: str, *, template: str, line: int | None = None) -> None:
        where = f"{template}, line {line}" if line else template
        super().__init__(f"{where}: {message}")
        self.template = template
        self.line = line


class DeliveryError(MailerError):
    """Base of delivery failures raised by a transport."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientDeliveryError(DeliveryError):
    """Try again later: 4xx, timeouts, dropped connections."""


class PermanentDeliveryError(DeliveryError):
    """Do not try again: 5xx. `hard_bounce` when the recipient address itself was refused."""

    def __init__(self, message: str, *, code: int | None = None, hard_bounce: bool = False) -> None:
        super().__init__(message, code=code)
        self.hard_bounce = hard_bounce
