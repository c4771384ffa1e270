"""Creating stores (tenants) and their dashboard users."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.errors import ValidationError
from mailer.ingest.identity import normalize_email
from mailer.models import Store, User
from mailer.models.store import hash_secret, new_public_key, new_secret_key
from mailer.models.user import ROLES

_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$|^localhost$")


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown time zone: {name!r} (use an IANA name like Europe/Berlin)") from exc
    return name


def create_store(
    session: Session, *, name: str, domain: str, now: datetime, timezone: str = "UTC", currency: str = "USD"
) -> tuple[Store, str]:
    """Create a store; returns it with its secret key, which is shown once and stored only hashed."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationError("store name must be 1 to 200 characters")
    domain = domain.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    if not _DOMAIN.match(domain):
        raise ValidationError(f"not a domain name: {domain!r} (e.g. shop.example.com)")
    currency = currency.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValidationError(f"currency must be a 3-letter ISO 4217 code, got {currency!r}")
    secret_key = new_secret_key()
    prefix = re.sub(r"[^A-Z0-9]", "", name.upper())[:6] or "BACK"
    store = Store(
        name=name,
        domain=domain,
        timezone=_check_timezone(timezone),
        currency=currency,
        public_key=new_public_key(),
        secret_key_hash=hash_secret(secret_key),
        sender_name=name,
        sender_email=f"hello@{domain}",
        coupon_prefix=prefix,
        settings={},
        created_at=now,
    )
    session.add(store)
    session.flush()
    return store, secret_key


def store_by_secret_key(session: Session, secret_key: str) -> Store | None:
    """The store whose secret key this is (looked up by hash), else None."""
    return session.scalar(select(Store).where(Store.secret_key_hash == hash_secret(secret_key)))


# --- users ---------------------------------------------------------------------------------------

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    """A salted scrypt hash, self-describing so parameters can change later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt${n}${r}${p}${salt}${hash}".format(
        **_SCRYPT, salt=base64.b64encode(salt).decode(), hash=base64.b64encode(digest).decode()
    )


def check_password(stored: str, password: str) -> bool:
    """True when `password` matches the stored hash (constant-time)."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), dklen=32, n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(base64.b64encode(digest).decode(), expected)


def create_user(session: Session, *, store_id: int, email: str, password: str, role: str, now: datetime) -> User:
    """Create a dashboard login for a store."""
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if len(password) < 8:
        raise ValidationError("password must be at least 8 characters")
    if session.get(Store, store_id) is None:
        raise ValidationError(f"no store with id {store_id}")
    email = normalize_email(email)
    if session.scalar(select(User.id).where(User.store_id == store_id, User.email == email)):
        raise ValidationError(f"a user {email} already exists for store {store_id}")
    user = User(store_id=store_id, email=email, password_hash=hash_password(password), role=role, created_at=now)
    session.add(user)
    session.flush()
    return user
