"""The inventory domain: SKUs, warehouses, stock levels, reservations and their rules.

Pure Python, no I/O. The database enforces the stock invariants with conditional writes; the
functions here decide *what* to write (which warehouses a line is taken from, whether a status
change is allowed) and are shared by the handlers and the property-based tests.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ecomops_platform.errors import Conflict, Unprocessable

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
RESERVATION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class SkuStatus(enum.StrEnum):
    ACTIVE = "active"
    DISCONTINUED = "discontinued"


class AdjustmentReason(enum.StrEnum):
    RECEIPT = "receipt"
    COUNT = "count"
    DAMAGE = "damage"
    RETURN = "return"
    CORRECTION = "correction"


class LedgerReason(enum.StrEnum):
    """Reasons of ledger entries: the adjustment reasons plus the service's own movements."""

    RECEIPT = "receipt"
    COUNT = "count"
    DAMAGE = "damage"
    RETURN = "return"
    CORRECTION = "correction"
    COMMIT = "commit"
    CANCEL = "cancel"


class ReservationStatus(enum.StrEnum):
    HELD = "held"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"


class ReleaseReason(enum.StrEnum):
    RELEASED = "released"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


# The reservation state machine: held is the only state that moves.
TRANSITIONS: dict[ReservationStatus, frozenset[ReservationStatus]] = {
    ReservationStatus.HELD: frozenset(
        {ReservationStatus.COMMITTED, ReservationStatus.RELEASED, ReservationStatus.EXPIRED}
    ),
    ReservationStatus.COMMITTED: frozenset(),
    ReservationStatus.RELEASED: frozenset(),
    ReservationStatus.EXPIRED: frozenset(),
}


def can_transition(current: ReservationStatus, target: ReservationStatus) -> bool:
    return target in TRANSITIONS[current]


def check_id(value: str, what: str, pattern: re.Pattern[str] = ID_PATTERN) -> str:
    if not pattern.match(value):
        raise Unprocessable(
            f"{what} {value!r} is not valid: 1..{64 if pattern is ID_PATTERN else 128} "
            "letters, digits, '.', '_' or '-', starting with a letter or digit",
            code="invalid-id",
        )
    return value


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Allocation:
    sku: str
    warehouse: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Candidate:
    """A warehouse that holds a SKU, with what can be taken from it now."""

    warehouse: str
    available: int
    region: str | None
    priority: int


@dataclass(frozen=True, slots=True)
class Shortage:
    sku: str
    requested: int
    available: int

    def as_dict(self) -> dict[str, object]:
        return {"sku": self.sku, "requested": self.requested, "available": self.available}


def validate_lines(lines: Sequence[Line], max_lines: int) -> list[Line]:
    """Refuse empty requests, non-positive quantities and repeated SKUs (422)."""
    if not lines:
        raise Unprocessable("a reservation needs at least one line", code="no-lines")
    if len(lines) > max_lines:
        raise Unprocessable(f"a reservation takes at most {max_lines} lines", code="too-many-lines")
    seen: set[str] = set()
    for line in lines:
        check_id(line.sku, "sku")
        if not 0 < line.quantity <= MAX_LINE_QUANTITY:
            raise Unprocessable(
                f"quantity of {line.sku} must be between 1 and {MAX_LINE_QUANTITY}, "
                f"got {line.quantity}",
                code="invalid-quantity",
                sku=line.sku,
            )
        if line.sku in seen:
            raise Unprocessable(
                f"sku {line.sku} appears more than once; send one line per SKU",
                code="duplicate-sku",
                sku=line.sku,
            )
        seen.add(line.sku)
    return sorted(lines, key=lambda ln: ln.sku)


def rank(candidates: Iterable[Candidate], region: str | None) -> list[Candidate]:
    """Warehouses in preference order: the region first, then priority, then code."""
    return sorted(
        candidates,
        key=lambda c: (0 if region and c.region == region else 1, c.priority, c.warehouse),
    )


def plan_line(
    sku: str, quantity: int, candidates: Sequence[Candidate], region: str | None
) -> list[Allocation] | None:
    """Where to take ``quantity`` units of ``sku`` from; None when the stock does not suffice.

    Preference: warehouses of the region (when they can cover the line together), then warehouse
    priority, then fewest splits (one warehouse covering the whole line beats a split).
    """
    usable = [c for c in candidates if c.available > 0]
    if sum(c.available for c in usable) < quantity:
        return None
    ranked = rank(usable, region)
    in_region = [c for c in ranked if region and c.region == region]
    pool = in_region if sum(c.available for c in in_region) >= quantity else ranked
    for cand in pool:
        if cand.available >= quantity:
            return [Allocation(sku, cand.warehouse, quantity)]
    out: list[Allocation] = []
    remaining = quantity
    for cand in pool:
        take = min(cand.available, remaining)
        if take > 0:
            out.append(Allocation(sku, cand.warehouse, take))
            remaining -= take
        if remaining == 0:
            break
    return out


def shortages(lines: Sequence[Line], available_by_sku: dict[str, int]) -> list[Shortage]:
    return [
        Shortage(line.sku, line.quantity, max(0, available_by_sku.get(line.sku, 0)))
        for line in lines
        if available_by_sku.get(line.sku, 0) < line.quantity
    ]


def shortage_error(found: Sequence[Shortage]) -> Conflict:
    names = ", ".join(f"{s.sku} (requested {s.requested}, available {s.available})" for s in found)
    return Conflict(
        f"not enough stock for: {names}; nothing was held",
        code="insufficient-stock",
        title="Insufficient stock",
        shortages=[s.as_dict() for s in found],
    )


def effective_ttl(requested: int | None, default: int, maximum: int) -> int:
    if requested is None or requested == 0:
        return default
    if requested < 0:
        raise Unprocessable("ttl_seconds must be positive", code="invalid-ttl")
    if requested > maximum:
        raise Unprocessable(
            f"ttl_seconds must be at most {maximum}", code="invalid-ttl", max_ttl_seconds=maximum
        )
    return requested


@dataclass
class Reservation:
    reservation_id: str
    status: ReservationStatus
    expires_at: datetime
    lines: list[Line]
    allocations: list[Allocation] = field(default_factory=list)
    region: str | None = None
    created_at: datetime | None = None
    closed_at: datetime | None = None
    release_reason: str | None = None

    def same_request(self, lines: Sequence[Line]) -> bool:
        mine = sorted((ln.sku, ln.quantity) for ln in self.lines)
        theirs = sorted((ln.sku, ln.quantity) for ln in lines)
        return mine == theirs


def commit_refusal(reservation: Reservation, now: datetime) -> Conflict | None:
    """Why a reservation cannot be committed now (None: it can, or it already is)."""
    if reservation.status is ReservationStatus.COMMITTED:
        return None
    if reservation.status is ReservationStatus.HELD and reservation.expires_at > now:
        return None
    state = (
        "expired"
        if reservation.status is ReservationStatus.EXPIRED
        or (reservation.status is ReservationStatus.HELD and reservation.expires_at <= now)
        else reservation.status.value
    )
    return Conflict(
        f"reservation {reservation.reservation_id} is {state} and cannot be committed",
        code=f"reservation-{state}",
        title="Reservation not held",
        status_now=state,
    )


def release_refusal(reservation: Reservation) -> Conflict | None:
    if reservation.status is ReservationStatus.COMMITTED:
        return Conflict(
            f"reservation {reservation.reservation_id} is committed and cannot be released",
            code="reservation-committed",
            title="Reservation already committed",
        )
    return None


def check_adjustment(on_hand: int, reserved: int, delta: int) -> None:
    """A delta may not take on-hand below zero or below what reservations hold (409)."""
    if delta == 0:
        raise Unprocessable("delta must not be zero", code="invalid-delta")
    if on_hand + delta < reserved or on_hand + delta < 0:
        raise Conflict(
            f"adjustment of {delta} would leave {on_hand + delta} on hand with {reserved} "
            "reserved; nothing was written",
            code="insufficient-stock",
            title="Adjustment would make stock negative",
            on_hand=on_hand,
            reserved=reserved,
            delta=delta,
        )


def crossed_below(before: int, after: int, threshold: int) -> bool:
    """True when availability fell from at-or-above the threshold to below it."""
    return threshold > 0 and before >= threshold > after


@dataclass(frozen=True, slots=True)
class Sku:
    sku: str
    title: str
    category: str
    brand: str | None
    attributes: dict[str, str]
    status: SkuStatus
    lead_time_days: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Warehouse:
    code: str
    name: str
    region: str | None
    priority: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: str
    sku: str
    warehouse: str
    delta: int
    reason: str
    reference: str | None
    on_hand_after: int
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class WarehouseStock:
    warehouse: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class StockLevel:
    sku: str
    warehouses: list[WarehouseStock]

    @property
    def on_hand(self) -> int:
        return sum(w.on_hand for w in self.warehouses)

    @property
    def reserved(self) -> int:
        return sum(w.reserved for w in self.warehouses)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class RowLevel:
    """A (SKU, warehouse) stock row after a write, with its planning thresholds."""

    on_hand: int
    reserved: int
    reorder_point: int
    suggested_order_quantity: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


# --- input bounds (documented in the API; the columns hold more, the API never accepts more) ---

#: Units of one SKU in a reservation line.
MAX_LINE_QUANTITY = 1_000_000
#: Largest stock adjustment, either way (BIGINT on_hand never overflows).
MAX_ADJUSTMENT = 1_000_000_000
#: Warehouse priority range (INTEGER column).
MAX_PRIORITY = 1_000_000
#: SKU attributes: at most 50 keys of 1..64 characters, values of at most 500 characters.
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_VALUE = 500


def check_attributes(attributes: Mapping[str, str] | None) -> dict[str, str]:
    """The SKU's attributes within their documented bounds (422 otherwise)."""
    values = dict(attributes or {})
    if len(values) > MAX_ATTRIBUTES:
        raise Unprocessable(
            f"a SKU takes at most {MAX_ATTRIBUTES} attributes, got {len(values)}",
            code="invalid-attributes",
        )
    for key, value in values.items():
        if not 1 <= len(key) <= MAX_ATTRIBUTE_KEY:
            raise Unprocessable(
                f"attribute names are 1..{MAX_ATTRIBUTE_KEY} characters",
                code="invalid-attributes",
            )
        if len(value) > MAX_ATTRIBUTE_VALUE:
            raise Unprocessable(
                f"attribute {key[:MAX_ATTRIBUTE_KEY]!r} is longer than {MAX_ATTRIBUTE_VALUE} "
                "characters",
                code="invalid-attributes",
            )
    return values


def check_adjustment_delta(delta: int) -> int:
    if delta == 0:
        raise Unprocessable("delta must not be zero", code="invalid-delta")
    if not -MAX_ADJUSTMENT <= delta <= MAX_ADJUSTMENT:
        raise Unprocessable(
            f"delta must be between -{MAX_ADJUSTMENT} and {MAX_ADJUSTMENT}", code="invalid-delta"
        )
    return delta


def check_priority(priority: int | None) -> int | None:
    if priority is not None and not 0 <= priority <= MAX_PRIORITY:
        raise Unprocessable(
            f"priority must be between 0 and {MAX_PRIORITY}", code="invalid-priority"
        )
    return priority


def plan_return(
    returned: Mapping[str, int],
    shipped: Sequence[Allocation],
    already_returned: Mapping[tuple[str, str], int],
    preference: Mapping[str, tuple[int, str]],
) -> tuple[list[Allocation], dict[str, int]]:
    """Where resellable returned units go back: to the warehouses that shipped them.

    ``returned`` is units per SKU; ``shipped`` the committed allocation of the order (SKU,
    warehouse, units); ``already_returned`` the units earlier returns of the same order put back
    per (SKU, warehouse); ``preference`` the (priority, code) sort key of each warehouse.

    The deterministic rule for a partial return of a line split across warehouses: each SKU's
    warehouses are filled in preference order (highest priority first, then code), each up to
    what it shipped minus what earlier returns already gave back to it. Units beyond that (a
    SKU the order never shipped, or more than it shipped) are returned as the second value, per
    SKU, for the caller's fallback. The result is sorted by SKU, then preference.
    """
    plan: list[Allocation] = []
    leftover: dict[str, int] = {}
    by_sku: dict[str, list[Allocation]] = {}
    for a in shipped:
        by_sku.setdefault(a.sku, []).append(a)
    for sku in sorted(returned):
        remaining = returned[sku]
        if remaining <= 0:
            continue
        origins = sorted(
            by_sku.get(sku, []), key=lambda a: preference.get(a.warehouse, (2**31, a.warehouse))
        )
        for a in origins:
            room = a.quantity - already_returned.get((sku, a.warehouse), 0)
            take = min(room, remaining)
            if take > 0:
                plan.append(Allocation(sku, a.warehouse, take))
                remaining -= take
            if remaining == 0:
                break
        if remaining > 0:
            leftover[sku] = remaining
    return plan, leftover
