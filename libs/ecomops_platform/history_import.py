"""``ecomops import orders --csv FILE``: a retailer's past orders into the order service.

The file has a header and one row per order line: ``customer_id, order_id, sku, quantity,
unit_price_minor, currency, ordered_at`` (RFC 3339 with a time zone). Rows of one order share its
customer, currency and time; two rows of one SKU in one order add up when their unit price is the
same.

Nothing of a bad file is applied:

1. the whole file is read and checked (types, times, that an order's rows agree); a bad row is
   reported as ``FILE:LINE: problem`` and nothing is sent;
2. every batch is sent as a dry run (``POST /v1/order-imports`` with ``dry_run``): the order
   service validates it as it would store it and names orders whose id is already used by a live
   order or by an imported order with other facts; any problem is reported with its line numbers
   and nothing is stored;
3. then the batches are stored, each in one transaction. The order service stores an order at
   most once per id, so a re-run after an interruption (even SIGKILL) skips what is stored and
   stores the rest; a failed request is retried because it is idempotent.

It talks to the order service's public REST API like any client: no database access.
"""

from __future__ import annotations

import csv
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

COLUMNS = (
    "customer_id",
    "order_id",
    "sku",
    "quantity",
    "unit_price_minor",
    "currency",
    "ordered_at",
)
#: Orders per request (the service takes at most 1000).
BATCH = 500
#: Problems printed before "... and N more".
SHOWN = 20


class ImportFailed(Exception):
    """The import stopped; ``problems`` are ``FILE:LINE: text`` lines to print."""

    def __init__(self, summary: str, problems: Sequence[str] = ()) -> None:
        super().__init__(summary)
        self.summary = summary
        self.problems = list(problems)


@dataclass
class Line:
    sku: str
    quantity: int
    unit_price_minor: int
    rows: list[int]


@dataclass
class Order:
    order_id: str
    customer_id: str
    currency: str
    ordered_at: datetime
    ordered_at_text: str
    row: int
    lines: list[Line] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "currency": self.currency,
            "ordered_at": self.ordered_at.isoformat(),
            "lines": [
                {"sku": ln.sku, "quantity": ln.quantity, "unit_price_minor": ln.unit_price_minor}
                for ln in self.lines
            ],
        }


@dataclass
class Parsed:
    orders: list[Order]
    rows: int


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("needs a time zone (e.g. 2026-03-01T10:00:00Z)")
    return value


def _int(text: str, name: str) -> int:
    text = text.strip()
    if not text or not (text.isdigit() or (text[0] == "-" and text[1:].isdigit())):
        raise ValueError(f"{name} {text!r} is not a whole number")
    return int(text)


def parse_rows(name: str, rows: Iterable[list[str]], header: list[str]) -> Parsed:
    """Orders from CSV rows (line 1 is the header); every problem of the file at once."""
    problems: list[str] = []
    header = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ImportFailed(
            f"{name}: not an order history file",
            [f"{name}:1: missing column(s) {', '.join(missing)}"],
        )
    at = {c: header.index(c) for c in COLUMNS}
    orders: dict[str, Order] = {}
    count = 0
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        count += 1
        if len(row) < len(header):
            problems.append(f"{name}:{number}: {len(row)} fields, the header has {len(header)}")
            continue
        value = {c: row[i].strip() for c, i in at.items()}
        try:
            for c in ("customer_id", "order_id", "sku", "currency", "ordered_at"):
                if not value[c]:
                    raise ValueError(f"{c} is empty")
            quantity = _int(value["quantity"], "quantity")
            price = _int(value["unit_price_minor"], "unit_price_minor")
            try:
                ordered_at = parse_time(value["ordered_at"])
            except ValueError as exc:
                raise ValueError(f"ordered_at {value['ordered_at']!r}: {exc}") from None
        except ValueError as exc:
            problems.append(f"{name}:{number}: {exc}")
            continue
        order = orders.get(value["order_id"])
        if order is None:
            order = orders[value["order_id"]] = Order(
                order_id=value["order_id"],
                customer_id=value["customer_id"],
                currency=value["currency"],
                ordered_at=ordered_at,
                ordered_at_text=value["ordered_at"],
                row=number,
            )
        else:
            clash = [
                c
                for c, mine, theirs in (
                    ("customer_id", value["customer_id"], order.customer_id),
                    ("currency", value["currency"], order.currency),
                    ("ordered_at", ordered_at, order.ordered_at),
                )
                if mine != theirs
            ]
            if clash:
                problems.append(
                    f"{name}:{number}: order {order.order_id} has another {', '.join(clash)} "
                    f"on line {order.row}"
                )
                continue
        same = next((ln for ln in order.lines if ln.sku == value["sku"]), None)
        if same is None:
            order.lines.append(Line(value["sku"], quantity, price, [number]))
        elif same.unit_price_minor != price:
            problems.append(
                f"{name}:{number}: {value['sku']} is on line {same.rows[0]} of order "
                f"{order.order_id} at another unit price"
            )
        else:
            same.quantity += quantity
            same.rows.append(number)
    if problems:
        raise ImportFailed(f"{name}: {len(problems)} bad row(s); nothing was imported", problems)
    if not orders:
        raise ImportFailed(f"{name}: no orders in the file")
    return Parsed(list(orders.values()), count)


def read_file(path: Path) -> Parsed:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise ImportFailed(f"{path}: the file is empty")
            return parse_rows(str(path), reader, header)
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise ImportFailed(f"{path}: not CSV ({exc})") from None


# --- sending -------------------------------------------------------------------------------------
@dataclass
class Outcome:
    orders: int = 0
    rows: int = 0
    imported: int = 0
    already: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


class Importer:
    def __init__(
        self,
        client: httpx.Client,
        order_url: str,
        token: str,
        *,
        batch: int = BATCH,
        name: str = "",
        progress: Callable[[str], None] | None = None,
        attempts: int = 5,
    ) -> None:
        self.client = client
        self.url = order_url.rstrip("/") + "/v1/order-imports"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.batch = max(1, min(batch, 1000))
        self.name = name
        self.progress = progress or (lambda _: None)
        self.attempts = attempts

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        """POST with retries on transport errors and 5xx/429 (safe: the import is idempotent)."""
        delay = 0.5
        for attempt in range(1, self.attempts + 1):
            try:
                resp = self.client.post(self.url, json=body, headers=self.headers)
            except httpx.TransportError as exc:
                if attempt == self.attempts:
                    raise ImportFailed(f"order service at {self.url} unreachable: {exc}") from None
            else:
                if resp.status_code < 500 and resp.status_code != 429:
                    return resp
                if attempt == self.attempts:
                    return resp
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    def _problems(self, batch: list[Order], resp: httpx.Response) -> list[str]:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        errors = body.get("errors") if isinstance(body, dict) else None
        out: list[str] = []
        for err in errors or []:
            where = _position(err)
            message = err.get("message") or err.get("msg") or "invalid"
            if where is None or where[0] >= len(batch):
                out.append(f"{self.name}: {err.get('location') or ''} {message}".strip())
                continue
            order = batch[where[0]]
            if where[1] is not None and where[1] < len(order.lines):
                line = order.lines[where[1]].rows[0]
            else:
                line = order.row
            fld = err.get("field") or (err.get("location") or [""])[-1]
            out.append(f"{self.name}:{line}: {fld}: {message}")
        if not out:
            detail = body.get("detail") if isinstance(body, dict) else None
            out.append(
                f"{self.name}: order service said {resp.status_code}: {detail or resp.text[:300]}"
            )
        return out

    def run(self, parsed: Parsed) -> Outcome:
        orders = parsed.orders
        batches = [orders[i : i + self.batch] for i in range(0, len(orders), self.batch)]
        import_id = f"import-{uuid.uuid4().hex[:12]}"
        started = time.perf_counter()
        # 1. Dry run of every batch: nothing is stored unless the whole file can be.
        problems: list[str] = []
        to_import = already = 0
        for n, batch in enumerate(batches, start=1):
            resp = self._post({"orders": [o.body() for o in batch], "dry_run": True})
            if resp.status_code == 200:
                result = resp.json()
                to_import += int(result["to_import"])
                already += int(result["already_imported"])
                by_id = {o.order_id: o for o in batch}
                for c in result["conflicts"]:
                    row = by_id[c["order_id"]].row if c["order_id"] in by_id else 0
                    problems.append(f"{self.name}:{row}: order {c['order_id']}: {c['reason']}")
            elif resp.status_code in (401, 403):
                raise ImportFailed(
                    f"the order service refused the token ({resp.status_code}): an ops token "
                    "of the stack's issuer is needed"
                )
            else:
                problems.extend(self._problems(batch, resp))
            self.progress(f"checked {min(n * self.batch, len(orders))}/{len(orders)} orders")
        if problems:
            raise ImportFailed(
                f"{self.name}: {len(problems)} problem(s); nothing was imported", problems
            )
        # 2. Store, batch by batch (each batch one transaction, each order once per id).
        outcome = Outcome(orders=len(orders), rows=parsed.rows)
        done = 0
        for batch in batches:
            resp = self._post(
                {"orders": [o.body() for o in batch], "import_id": import_id, "dry_run": False}
            )
            if resp.status_code != 200:
                lines = self._problems(batch, resp)
                raise ImportFailed(
                    f"{self.name}: stopped after {done} of {len(orders)} orders "
                    f"({outcome.imported} stored now); run the same command again to go on",
                    lines,
                )
            result = resp.json()
            if result["conflicts"]:  # another importer stored a clashing order meanwhile
                raise ImportFailed(
                    f"{self.name}: stopped after {done} of {len(orders)} orders: conflicts",
                    [f"order {c['order_id']}: {c['reason']}" for c in result["conflicts"]],
                )
            outcome.imported += int(result["imported"])
            outcome.already += int(result["already_imported"])
            done += len(batch)
            elapsed = time.perf_counter() - started
            self.progress(
                f"imported {done}/{len(orders)} orders ({outcome.imported} new, "
                f"{outcome.already} already there), {done / max(elapsed, 1e-9):.0f} orders/s"
            )
        outcome.seconds = time.perf_counter() - started
        return outcome


def _position(err: dict[str, Any]) -> tuple[int, int | None] | None:
    """(order index, line index) of a problem: the service's own fields, or a request
    validation error's location (``body.orders.3.lines.1.quantity``)."""
    if isinstance(err.get("order_index"), int):
        line = err.get("line_index")
        return err["order_index"], line if isinstance(line, int) else None
    loc = [str(p) for p in err.get("location") or []]
    if "orders" in loc:
        i = loc.index("orders")
        if i + 1 < len(loc) and loc[i + 1].isdigit():
            line_index = None
            if i + 3 < len(loc) and loc[i + 2] == "lines" and loc[i + 3].isdigit():
                line_index = int(loc[i + 3])
            return int(loc[i + 1]), line_index
    return None


# --- the command ---------------------------------------------------------------------------------
def service_url(name: str) -> str:
    """The local stack's REST base URL of a service (``<SERVICE>_URL`` overrides)."""
    explicit = os.environ.get(f"{name.upper()}_URL")
    if explicit:
        return explicit
    from . import registry

    info = registry.SERVICES[name]
    port = int(os.environ.get(f"{info.env_prefix}HTTP_PORT", info.http_port))
    return f"http://127.0.0.1:{port}"


def ops_token(explicit: str | None, subject: str = "ops-import") -> str:
    """``--token``, else ``ECOMOPS_TOKEN``, else one minted with the local stack's secret."""
    token = explicit or os.environ.get("ECOMOPS_TOKEN")
    if token:
        return token
    secret = os.environ.get("ECOMOPS_JWT_SECRET")
    if not secret:
        raise ImportFailed(
            "no token: pass --token (an ops token of the stack's issuer), set ECOMOPS_TOKEN, "
            "or run against a local stack (make run) whose secret is in .local/run/env"
        )
    from .auth import mint_token

    return mint_token(
        secret,
        subject,
        "ops",
        ttl_seconds=6 * 3600,
        issuer=os.environ.get("ECOMOPS_JWT_ISSUER", "ecomops"),
        audience=os.environ.get("ECOMOPS_JWT_AUDIENCE", "ecomops"),
    )


def print_failure(exc: ImportFailed, out: TextIO = sys.stderr) -> None:
    for line in exc.problems[:SHOWN]:
        print(line, file=out)
    if len(exc.problems) > SHOWN:
        print(f"... and {len(exc.problems) - SHOWN} more", file=out)
    print(exc.summary, file=out)


def import_orders(
    path: Path,
    *,
    order_url: str | None = None,
    token: str | None = None,
    batch: int = BATCH,
    quiet: bool = False,
) -> Outcome:
    parsed = read_file(path)

    def progress(text: str) -> None:
        if not quiet:
            print(f"\r{text}\033[K", end="", file=sys.stderr, flush=True)

    with httpx.Client(timeout=120) as client:
        importer = Importer(
            client,
            order_url or service_url("order"),
            ops_token(token),
            batch=batch,
            name=str(path),
            progress=progress,
        )
        try:
            return importer.run(parsed)
        finally:
            if not quiet:
                print(file=sys.stderr)


def main(args: Any) -> int:
    try:
        outcome = import_orders(
            Path(args.csv), order_url=args.url, token=args.token, batch=args.batch, quiet=args.quiet
        )
    except ImportFailed as exc:
        print_failure(exc)
        return 2
    print(
        f"{args.csv}: {outcome.rows} rows, {outcome.orders} orders: {outcome.imported} imported, "
        f"{outcome.already} already imported; {outcome.seconds:.1f} s "
        f"({outcome.rows_per_second:.0f} rows/s)"
    )
    return 0
