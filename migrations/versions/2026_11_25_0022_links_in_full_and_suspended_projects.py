"""Blocks keep every replacement serial and a cancellation's reason; a suspended project's units stay.

- ``blocks.replaced_by`` was ``varchar(120)``: a reversal replaced by several buffer blocks had its
  list of serials cut. It becomes ``text``, as ``blocks.destination`` (which now also keeps a
  cancellation's reason, up to 1,000 characters, not only an export's registry and reference).
- PostgreSQL: ``registry_retire`` (revision 0017), ``registry_reserve`` and ``registry_post_or_release``
  (revision 0011) refuse the units of a suspended project (``project_not_registered``) right after
  reading the project, as ``service._pick`` and ``service._reservation`` do: same signatures, no extra
  statement for a project that is not suspended (the status is read with the id). A release still
  runs: it only gives reserved units back to their holding.

A downgrade puts the earlier functions back; it fails while a link or reason is longer than the old
columns allow.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-25 17:00:00.000000+00:00
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_FIND_PROJECT = """    SELECT id INTO v_project_id FROM projects WHERE code = p_project_code;
    IF NOT FOUND THEN
        RETURN json_build_object('error', 'not_found', 'message', format('no project %L', p_project_code));
    END IF;
"""
_FIND_MOVABLE_PROJECT = (
    "    SELECT id, status INTO v_project_id, v_status FROM projects WHERE code = p_project_code;\n"
    + """    IF NOT FOUND THEN
        RETURN json_build_object('error', 'not_found', 'message', format('no project %L', p_project_code));
    END IF;
    IF v_status = 'suspended' THEN
        RETURN json_build_object('error', 'project_not_registered', 'message',
            format('%s is suspended: its units do not move until it is registered again',
                   p_project_code));
    END IF;
"""
)
_DECLARE = "    v_project_id text;\n"
_DECLARE_STATUS = "    v_project_id text;\n    v_status text;\n"
_POST_CHECK_AFTER = """            'message', 'a reservation spans one project vintage');
    END IF;
"""
_POST_CHECK = """            'message', 'a reservation spans one project vintage');
    END IF;
    IF p_operation = 'post' AND (SELECT status FROM projects WHERE id = v_project_id) = 'suspended' THEN
        RETURN json_build_object('error', 'project_not_registered', 'message',
            format('%s is suspended: its units do not move until it is registered again', v_project_code));
    END IF;
"""


def _revision(name: str) -> ModuleType:
    path = Path(__file__).with_name(f"2026_11_25_{name}.py")
    spec = importlib.util.spec_from_file_location(f"neutralize_migration_{name[:4]}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _replaced(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old  # the earlier function is exactly as this revision expects
    return text.replace(old, new)


def _functions() -> tuple[list[str], list[str]]:
    """The functions this revision creates, and the earlier ones a downgrade puts back."""
    r0011, r0017 = _revision("0011_reserve_and_post_in_one_call"), _revision("0017_retirement_lanes")
    earlier = [
        r0017.RETIRE,
        r0011.RESERVE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"),
        r0011.POST_OR_RELEASE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"),
    ]
    movable = [
        _replaced(_replaced(text, _FIND_PROJECT, _FIND_MOVABLE_PROJECT), _DECLARE, _DECLARE_STATUS)
        for text in earlier[:2]
    ]
    movable.append(_replaced(earlier[2], _POST_CHECK_AFTER, _POST_CHECK))
    return movable, earlier


def upgrade() -> None:
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.alter_column("replaced_by", existing_type=sa.String(length=120), type_=sa.Text())
        batch_op.alter_column("destination", existing_type=sa.String(length=300), type_=sa.Text())
    if op.get_bind().dialect.name != "postgresql":
        return
    connection = op.get_bind().execution_options(no_parameters=True)
    for statement in _functions()[0]:
        connection.exec_driver_sql(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        connection = op.get_bind().execution_options(no_parameters=True)
        for statement in _functions()[1]:
            connection.exec_driver_sql(statement)
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.alter_column("destination", existing_type=sa.Text(), type_=sa.String(length=300))
        batch_op.alter_column("replaced_by", existing_type=sa.Text(), type_=sa.String(length=120))
