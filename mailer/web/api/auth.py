"""API keys: the Bearer secret key of the server API and the public key of the snippet."""

from __future__ import annotations

import re

from flask import g, request

from mailer.errors import Unauthorized
from mailer.models import Store
from mailer.stores import store_by_secret_key
from mailer.web.api.public_stores import PublicStore, public_stores
from mailer.web.database import db_session

# The shapes keys are issued in; anything else is unknown without asking the database.
_SECRET_KEY = re.compile(r"sk_[A-Za-z0-9]{1,125}")
PUBLIC_KEY_SHAPE = re.compile(r"pk_[A-Za-z0-9]{1,61}")


def secret_key_store() -> Store:
    """The store whose secret key is in `Authorization: Bearer sk_…`; 401 otherwise.

    Every query of the calling view is then scoped by this store.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("send the store's secret key as Authorization: Bearer sk_…")
    store = store_by_secret_key(db_session(), key) if _SECRET_KEY.fullmatch(key) else None
    if store is None:
        raise Unauthorized("unknown secret key")
    g.api_store = store
    return store


def public_key_store(key: object) -> PublicStore:
    """The store of a snippet's public key (cached for seconds, see public_stores); 401 when there is none."""
    if not isinstance(key, str) or not key:
        raise Unauthorized("missing key: send the store's public key (pk_…) as \"key\"")
    store = public_stores().get(db_session(), key) if PUBLIC_KEY_SHAPE.fullmatch(key) else None
    if store is None:
        raise Unauthorized("unknown public key")
    g.api_store = store
    return store
