"""Issue 13 (rules): a national ID is unique per community, no longer across all communities.

A community registering someone must not learn whether another community has them; the
district resolves the move (backend/residents/moves.py). So `national_id_index` loses its
global UNIQUE and (community, national_id_index) becomes unique.

PostgreSQL takes tortoise's own ALTER. SQLite cannot drop a column's UNIQUE without rebuilding
the table, and tortoise's rebuild drops the old table with foreign keys on, which cascades to
every row that references a resident (month statuses, consents, certifications ...) and loses
the table's indexes. So on SQLite this migration rebuilds `resident` itself, the way the SQLite
manual prescribes (foreign keys off, a copy of the table's own definition without that UNIQUE,
copy the rows, drop, rename, indexes back, foreign_key_check), and runs outside a transaction
for that reason (PRAGMA foreign_keys is ignored inside one).
"""

import re

from tortoise import fields, migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import UniqueConstraint


def _on_sqlite(editor) -> bool:
    return editor is not None and getattr(editor, "DIALECT", "") == "sqlite"


class _AlterFieldNotOnSqlite(ops.AlterField):
    """tortoise's ALTER where the database can alter in place; SQLite is rebuilt by `_rebuild_on_sqlite`."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if not _on_sqlite(state_editor):
            await super().database_forward(app_label, old_state, new_state, state_editor)


async def _rebuild_on_sqlite(apps, editor) -> None:
    if not _on_sqlite(editor):
        return
    client = editor.client
    _, tables = await client.execute_query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'resident'")
    new_table, found = re.subn(r'("national_id_index"\s+VARCHAR\(64\)\s+NOT NULL)\s+UNIQUE', r"\1", tables[0]["sql"])
    if found != 1:
        raise RuntimeError("resident.national_id_index is not defined as this migration expects")
    new_table = re.sub(r'^CREATE TABLE\s+"?resident"?', 'CREATE TABLE "new__resident"', new_table)
    _, info = await client.execute_query('PRAGMA table_info("resident")')
    columns = ", ".join(f'"{row["name"]}"' for row in info)
    _, rows = await client.execute_query(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'resident' AND sql IS NOT NULL")
    indexes = [row["sql"] for row in rows]
    national_id_index = editor._generate_index_name_for_table("idx", "resident", ["national_id_index"])
    script = ";\n".join([
        "PRAGMA foreign_keys=OFF",
        "BEGIN",
        new_table,
        f'INSERT INTO "new__resident" ({columns}) SELECT {columns} FROM "resident"',
        'DROP TABLE "resident"',
        'ALTER TABLE "new__resident" RENAME TO "resident"',
        *indexes,
        f'CREATE INDEX "{national_id_index}" ON "resident" ("national_id_index")',
        "COMMIT",
        "PRAGMA foreign_keys=ON",
    ]) + ";"
    await client.execute_script(script)
    _, broken = await client.execute_query("PRAGMA foreign_key_check")
    if broken:
        raise RuntimeError(f"foreign keys broken after rebuilding resident: {list(broken)[:5]}")


class Migration(migrations.Migration):
    dependencies = [('zhilian', '0009_rules_closures_devices')]

    initial = False
    atomic = False  # the SQLite rebuild needs foreign keys off, which only works outside a transaction

    operations = [
        ops.AlterModelOptions(
            name='Resident',
            options={'table': 'resident', 'app': 'zhilian', 'unique_together': (('community', 'national_id_index'),), 'pk_attr': 'id', 'table_description': 'An elder drawing the old-age subsidy, as registered in one community.'},
        ),
        _AlterFieldNotOnSqlite(
            model_name='Resident',
            name='national_id_index',
            field=fields.CharField(db_index=True, description='keyed hash, unique per community (a move is resolved by the district)', max_length=64),
        ),
        ops.RunPython(_rebuild_on_sqlite),
        ops.AddConstraint(
            model_name='Resident',
            constraint=UniqueConstraint(fields=('community', 'national_id_index'), name=None),
        ),
    ]
