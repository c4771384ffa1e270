"""Batches of values as array parameters on PostgreSQL: `= ANY(array)` matches, `unnest` rows."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, any_, bindparam, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import TableValuedAlias

from mailer.db import is_postgresql


def among(session: Session, column: ColumnElement[Any], values: Collection[Any]) -> ColumnElement[bool]:
    """`column` is one of `values`, written so the statement's text does not grow with the batch.

    A batch of 200 ids is 200 placeholders in `IN (…)`: on PostgreSQL the driver re-parses that long
    statement on every execution; one array parameter keeps the text short and cached (a select
    of 200 messages by id takes a third of the time).
    """
    if is_postgresql(session):
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def unnested(table: Table, rows: Sequence[Mapping[str, Any]]) -> TableValuedAlias:
    """PostgreSQL only: `rows` as a derived table, `unnest` of one array per column of `table`.

    For INSERT … SELECT and UPDATE … FROM of a whole batch in one statement whose text stays the
    same whatever the batch size (an executemany sends one statement per row).
    """
    names = list(rows[0])
    return (
        func.unnest(*(bindparam(name, [row[name] for row in rows], type_=ARRAY(table.c[name].type)) for name in names))
        .table_valued(*names)
        .render_derived()
    )
