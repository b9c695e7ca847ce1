"""``ecomops import orders``: the file check (every bad row named by its line, nothing sent) and
the two passes against a fake order service (a dry run of every batch before any is stored)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecomops_platform.history_import import Importer, ImportFailed, read_file

HEADER = "customer_id,order_id,sku,quantity,unit_price_minor,currency,ordered_at\n"


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "orders.csv"
    path.write_text(header + body)
    return path


def test_rows_of_one_order_make_one_order(tmp_path: Path) -> None:
    parsed = read_file(
        write(
            tmp_path,
            "c1,o1,A,2,500,EUR,2026-01-05T10:00:00Z\n"
            "c1,o1,B,1,250,EUR,2026-01-05T10:00:00Z\n"
            "c1,o1,A,1,500,EUR,2026-01-05T10:00:00Z\n"
            "\n"
            "c2,o2,A,1,500,EUR,2026-01-06T10:00:00+01:00\n",
        )
    )
    assert parsed.rows == 4
    first, second = parsed.orders
    assert [(ln.sku, ln.quantity, ln.rows) for ln in first.lines] == [
        ("A", 3, [2, 4]),
        ("B", 1, [3]),
    ]
    assert second.body()["ordered_at"] == "2026-01-06T10:00:00+01:00"


def test_every_bad_row_is_reported_with_its_line_number(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c1,o1,A,2,500,EUR,2026-01-05T10:00:00Z\n"  # 2 fine
        "c1,o1,B,two,250,EUR,2026-01-05T10:00:00Z\n"  # 3 quantity
        "c1,o2,A,1,500,EUR,2026-01-05T10:00:00\n"  # 4 no zone
        "c9,o1,C,1,100,EUR,2026-01-05T10:00:00Z\n"  # 5 other customer for o1
        "c1,o1,A,1,499,EUR,2026-01-05T10:00:00Z\n"  # 6 A at another price
        "c1,o3,,1,100,EUR,2026-01-05T10:00:00Z\n"  # 7 empty sku
        "c1,o4,A,1\n",  # 8 short row
    )
    with pytest.raises(ImportFailed) as err:
        read_file(path)
    lines = [p.split(":")[1] for p in err.value.problems]
    assert lines == ["3", "4", "5", "6", "7", "8"]
    assert "quantity 'two'" in err.value.problems[0]
    assert "time zone" in err.value.problems[1]
    assert "customer_id" in err.value.problems[2]
    assert "nothing was imported" in err.value.summary


def test_a_missing_column_is_line_one(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed) as err:
        read_file(write(tmp_path, "c1,o1,A,1,1,EUR\n", header="customer_id,order_id,sku\n"))
    assert err.value.problems[0].endswith(
        ":1: missing column(s) quantity, unit_price_minor, currency, ordered_at"
    )


class FakeOrderService:
    """Records requests; refuses order ``bad`` (its second line) like the real service."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.stored: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        ids = [o["order_id"] for o in body["orders"]]
        if "bad" in ids:
            index = ids.index("bad")
            return httpx.Response(
                422,
                json={
                    "errors": [
                        {"order_index": index, "line_index": 1, "field": "sku", "message": "no"}
                    ]
                },
            )
        new = [i for i in ids if i not in self.stored]
        if not body["dry_run"]:
            self.stored.update(new)
        return httpx.Response(
            200,
            json={
                "dry_run": body["dry_run"],
                "imported": 0 if body["dry_run"] else len(new),
                "to_import": len(new) if body["dry_run"] else 0,
                "already_imported": len(ids) - len(new),
                "conflicts": [],
            },
        )


def importer(service: FakeOrderService, batch: int = 2) -> Importer:
    client = httpx.Client(transport=httpx.MockTransport(service))
    return Importer(client, "http://order", "t", batch=batch, name="f.csv")


def test_a_problem_found_by_the_dry_run_stores_nothing_and_names_the_line(
    tmp_path: Path,
) -> None:
    rows = "".join(f"c1,o{n},A,1,100,EUR,2026-01-05T10:00:00Z\n" for n in range(5))
    rows += "c1,bad,A,1,100,EUR,2026-01-05T10:00:00Z\nc1,bad,B,1,100,EUR,2026-01-05T10:00:00Z\n"
    service = FakeOrderService()
    with pytest.raises(ImportFailed) as err:
        importer(service).run(read_file(write(tmp_path, rows)))
    assert err.value.problems == ["f.csv:8: sku: no"]
    assert all(r["dry_run"] for r in service.requests)
    assert not service.stored


def test_a_rerun_stores_only_what_is_missing(tmp_path: Path) -> None:
    rows = "".join(f"c1,o{n},A,1,100,EUR,2026-01-05T10:00:00Z\n" for n in range(5))
    parsed = read_file(write(tmp_path, rows))
    service = FakeOrderService()
    service.stored = {"o0", "o1", "o2"}  # an earlier run was killed after two batches
    outcome = importer(service).run(parsed)
    assert (outcome.imported, outcome.already, outcome.rows) == (2, 3, 5)
    assert service.stored == {f"o{n}" for n in range(5)}
