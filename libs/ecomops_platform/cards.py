"""The one card-number (PAN) screen of every service and transport.

PCI: no ecomops service accepts, stores, publishes or logs a primary account number. Every
REST request (path, query, JSON body, ``Idempotency-Key``), every gRPC request message and
every consumed event is screened here, before anything else runs.

What counts as a card number, after normalisation:

- normalisation: Unicode NFKC (full-width and other compatibility digits become ASCII), every
  decimal digit of any script read as its value, format characters (category ``Cf``: zero-width
  space and joiners, soft hyphen, BOM, bidi marks) removed, every dash (category ``Pd``) read as
  ``-``;
- a *number* is a run of digit groups separated by at most three spaces, dots or dashes
  (four groups of four digits split by spaces, by dots, or by `` - ``); a contiguous run of
  digits is one group and is never cut in the middle;
- any window of whole consecutive groups holding 13 to 19 digits that passes the Luhn check and
  starts like a payment card (major industry identifier 2–6 or 8; 13 digits only for the 4…
  range) is a card number — so a number written next to the PAN cannot hide it.

What is *not* screened, to avoid refusing our own identifiers (a random 32-hex id contains a
Luhn-valid run of 13+ digits about once in 260): canonical UUIDs (``8-4-4-4-12`` hex) and
stand-alone hex tokens of exactly 32, 40 or 64 characters (UUID hex, SHA-1, SHA-256
fingerprints) are masked before the scan. The price of this is that a PAN hidden inside a
32/40/64-hex token is not found; such a token is not a presentation of a card number a human
or a client library would produce.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import Unprocessable

CARD_NUMBER_CODE = "card-number-refused"
CARD_NUMBER_TITLE = "Card number refused"
CARD_NUMBER_DETAIL = (
    "the request contains what looks like a card number; card numbers are never accepted, "
    "send a payment token from the payment provider instead"
)

_MIN_DIGITS = 13
_MAX_DIGITS = 19
_CARD_FIRST_DIGITS = frozenset("234568")

# A run of digit groups: digits, then (separator of 1-3 spaces/dots/dashes, digits)*.
_NUMBER = re.compile(r"\d+(?:[\s.\-]{1,3}\d+)*", re.ASCII)
_GROUP = re.compile(r"\d+", re.ASCII)
_UUID = re.compile(
    r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}(?![0-9A-Za-z])"
)
_HEX_ID = re.compile(
    r"(?<![0-9A-Za-z])(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{40}|[0-9a-fA-F]{32})(?![0-9A-Za-z])"
)
_DROP_ASCII_DIGITS = str.maketrans("", "", "0123456789")


def card_number_refused() -> Unprocessable:
    """The error every transport answers with (422 / INVALID_ARGUMENT); it never carries the
    refused value."""
    return Unprocessable(CARD_NUMBER_DETAIL, code=CARD_NUMBER_CODE, title=CARD_NUMBER_TITLE)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _looks_like_pan(digits: str) -> bool:
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS or digits[0] not in _CARD_FIRST_DIGITS:
        return False
    if len(digits) == _MIN_DIGITS and digits[0] != "4":
        return False
    return luhn_valid(digits)


def normalise(text: str) -> str:
    """What the screen reads: NFKC, digits of every script as ASCII, format characters
    removed, dashes as ``-``."""
    if text.isascii():
        return text
    out: list[str] = []
    for char in unicodedata.normalize("NFKC", text):
        category = unicodedata.category(char)
        if category == "Cf":
            continue
        if category == "Nd":
            out.append(str(unicodedata.decimal(char, 0)))
        elif category == "Pd":
            out.append("-")
        else:
            out.append(char)
    return "".join(out)


def _mask_ids(text: str) -> str:
    if len(text) < 32:
        return text
    return _HEX_ID.sub("#", _UUID.sub("#", text))


def _holds_pan(groups: list[str]) -> bool:
    """Any window of whole consecutive groups that reads as a card number."""
    for start, first in enumerate(groups):
        if first[0] not in _CARD_FIRST_DIGITS:
            continue
        digits = ""
        for group in groups[start:]:
            digits += group
            if len(digits) > _MAX_DIGITS:
                break
            if len(digits) >= _MIN_DIGITS and _looks_like_pan(digits):
                return True
    return False


def contains_card_number(text: str) -> bool:
    """True when ``text`` holds something that reads as a card number anywhere."""
    if text.isascii():  # the common case, at C speed
        if len(text) - len(text.translate(_DROP_ASCII_DIGITS)) < _MIN_DIGITS:
            return False
    elif sum(1 for c in text if c.isdigit()) < _MIN_DIGITS:
        return False
    scanned = _mask_ids(normalise(text))
    for match in _NUMBER.finditer(scanned):
        number = match.group()
        if len(number) >= _MIN_DIGITS and _holds_pan(_GROUP.findall(number)):
            return True
    return False


def find_card_number(value: Any) -> bool:
    """Walk a decoded JSON-like value (dicts, lists, strings, integers) for a card number;
    keys are screened as well as values."""
    if isinstance(value, str):
        return contains_card_number(value)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return contains_card_number(str(value))
    if isinstance(value, bytes | bytearray):
        return contains_card_number(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return any(find_card_number(k) or find_card_number(v) for k, v in value.items())
    if isinstance(value, Iterable):
        return any(find_card_number(item) for item in value)
    return False


def refuse_card_numbers(value: Any) -> None:
    """Raise the shared 422 / INVALID_ARGUMENT when ``value`` carries a card number."""
    if find_card_number(value):
        raise card_number_refused()


def message_has_card_number(message: Any) -> bool:
    """Walk a protobuf message's set fields (recursively, maps and repeated fields included)
    for a card number in any string, bytes or integer field."""
    if not hasattr(message, "ListFields"):
        return find_card_number(message)
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            items: Iterable[Any] = [item for pair in value.items() for item in pair]
        elif field.is_repeated:
            items = value
        else:
            items = [value]
        for item in items:
            if hasattr(item, "ListFields"):
                if message_has_card_number(item):
                    return True
            elif find_card_number(item):
                return True
    return False


# Set on a dead letter whose payload was dropped because it carried a card number.
PAYLOAD_DROPPED_HEADER = "dlq_payload_dropped"


class CardNumberInEvent(ValueError):
    """A consumed event carries a card number: it is poison, never applied."""


def event_has_card_number(message: Any) -> bool:
    """For consumers: does a decoded event payload carry a card number?"""
    return message_has_card_number(message)


def screen_event(message: Any) -> None:
    """The consumer's screen of a decoded event payload (call it right after decoding).

    Decision (docs/security.md): events are produced by our own services, which screen every
    input, so a PAN in an event means a bug or a foreign producer. Such an event is poison: it
    is never applied (nothing stored, nothing re-published), its offset moves on, and it is
    dead-lettered *without its payload* (the value would copy the PAN into the DLQ topic);
    the DLQ record keeps the CloudEvents headers and the original topic/partition/offset so an
    operator can find and purge it. The log names the event id, never the value.
    """
    if event_has_card_number(message):
        raise CardNumberInEvent("the event payload carries a card number; it is never applied")
