"""Aggregated aiconfigurator runs stored with the N^2 GPUs their file records: the N they ran on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

The aiconfigurator importer now maps 414 aggregated rows of ``silicon_sample.csv`` whose
layout columns record ``N^2`` GPUs to the ``N`` their run used (see
:func:`optimizer.profiles.importers.aiconfigurator.squared_layout`). A database that
imported those rows before holds them with the file's layout, and re-importing would add
the mapped rows next to them (the layout is part of the run key). This migration rewrites
such stored rows as the importer now maps them: ``tp``, ``dp`` and ``ep``, the file's
values kept in ``extra`` with ``layout_from = "squared_layout"``, and the run key of the
new values, so a re-import finds them stored. Downgrading writes the file's layout back.

Only rows the aiconfigurator importer wrote are touched (aggregated, with its
``batch_size``, ``concurrency_from`` and ``quantization_from`` in ``extra``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from optimizer.profiles.importers.aiconfigurator import id_gpus, squared_layout
from optimizer.profiles.run_key import RUN_KEY_FIELDS, run_key

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_IMPORTER_KEYS = ("batch_size", "concurrency_from", "quantization_from")
_FILE_COLUMNS = ("tp_size", "attention_dp_size", "moe_ep_size")


def _importer_rows(connection: sa.Connection) -> tuple[sa.Table, list[Any]]:
    table = sa.Table("profile_runs", sa.MetaData(), autoload_with=connection)
    columns = [table.c.id, table.c.extra, *(table.c[name] for name in RUN_KEY_FIELDS)]
    rows = connection.execute(sa.select(*columns).where(table.c.mode == "agg")).all()
    mine = [
        row
        for row in rows
        if isinstance(row.extra, dict) and all(key in row.extra for key in _IMPORTER_KEYS)
    ]
    return table, mine


def _rewrite(
    connection: sa.Connection,
    table: sa.Table,
    row: Any,
    layout: tuple[int, ...],
    extra: dict[str, Any],
) -> None:
    """Store ``row`` with ``layout`` as (tp, dp, ep) and its run key; where a row with
    that key is stored already (imported after the importer changed), drop this one."""
    values = {name: getattr(row, name) for name in RUN_KEY_FIELDS}
    values["tp"], values["dp"], values["ep"] = layout
    key = run_key(values)
    taken = connection.execute(
        sa.select(table.c.id).where(table.c.run_key == key, table.c.id != row.id)
    ).first()
    if taken is not None:
        connection.execute(sa.delete(table).where(table.c.id == row.id))
        return
    connection.execute(
        sa.update(table)
        .where(table.c.id == row.id)
        .values(tp=layout[0], dp=layout[1], ep=layout[2], extra=extra, run_key=key)
    )


def upgrade() -> None:
    connection = op.get_bind()
    table, rows = _importer_rows(connection)
    for row in rows:
        if "layout_from" in row.extra:
            continue
        moe_tp = row.extra.get("moe_tp_size") or 1
        layout = squared_layout(row.tp, row.dp, int(moe_tp), row.ep, id_gpus(row.source_id))
        if layout is None:
            continue
        # the file's values: a 0 the importer kept in extra, else the stored degree
        written = {"tp_size": row.tp, "attention_dp_size": row.dp, "moe_ep_size": row.ep}
        extra = {**row.extra}
        for column in _FILE_COLUMNS:
            extra[column] = row.extra.get(column, written[column])
        extra["layout_from"] = "squared_layout"
        _rewrite(connection, table, row, layout, dict(sorted(extra.items())))


def downgrade() -> None:
    connection = op.get_bind()
    table, rows = _importer_rows(connection)
    for row in rows:
        if row.extra.get("layout_from") != "squared_layout":
            continue
        # (a blank in the file, which a fresh import leaves out of extra, is 1)
        layout = tuple(max(int(row.extra.get(column) or 1), 1) for column in _FILE_COLUMNS)
        extra = {k: v for k, v in row.extra.items() if k not in (*_FILE_COLUMNS, "layout_from")}
        for column in ("attention_dp_size", "moe_ep_size"):  # the importer keeps a 0
            if row.extra.get(column) == 0:
                extra[column] = 0
        _rewrite(connection, table, row, layout, extra)
