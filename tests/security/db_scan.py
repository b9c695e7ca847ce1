"""What a refused request must not have left behind: rows of a service's database (every table,
text columns as JSON and bytea columns such as outbox payloads as bytes) holding a needle."""

from __future__ import annotations

import asyncpg
from proof_fixtures import pg_dsn


async def rows_containing(service: str, needles: list[str]) -> list[tuple[str, str]]:
    """(table, row as JSON text) for at most three rows per table and needle."""
    conn = await asyncpg.connect(pg_dsn(service))
    hits: list[tuple[str, str]] = []
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        for row in tables:
            name = row["table_name"]
            binary = [
                r["column_name"]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name = $1 AND data_type = 'bytea'",
                    name,
                )
            ]
            for needle in needles:
                conditions = ["row_to_json(t)::text LIKE $1"] + [
                    f"position(convert_to($2, 'UTF8') in t.\"{col}\") > 0" for col in binary
                ]
                args = [f"%{needle}%", needle] if binary else [f"%{needle}%"]
                found = await conn.fetch(
                    f'SELECT row_to_json(t)::text AS row FROM "{name}" t '
                    f"WHERE {' OR '.join(conditions)} LIMIT 3",
                    *args,
                )
                hits.extend((name, item["row"]) for item in found)
    finally:
        await conn.close()
    return hits
