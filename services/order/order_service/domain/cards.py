"""Card-number detection (PCI): anything that looks like a primary account number is refused.

A PAN is 13 to 19 digits, possibly grouped with spaces or dashes, that passes the Luhn check.
The order service never stores, echoes or logs such a value: requests carrying one are refused
before anything else happens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# Digits optionally separated by single spaces or dashes; the Luhn/length check decides.
_CANDIDATE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,22}(?!\d)")


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


def contains_card_number(text: str) -> bool:
    """True when ``text`` holds a 13–19 digit Luhn-valid number anywhere."""
    for match in _CANDIDATE.finditer(text):
        # Grouped digits (four groups of four, say) count as one number; any run of whole groups
        # may be the PAN, so a number written next to it cannot hide it.
        groups = re.split(r"[ -]", match.group())
        for start in range(len(groups)):
            for end in range(start + 1, len(groups) + 1):
                digits = "".join(groups[start:end])
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_valid(digits):
                    return True
    return False


def find_card_number(value: Any) -> bool:
    """Walk a decoded JSON-like value (dicts, lists, strings, numbers) for a card number."""
    if isinstance(value, str):
        return contains_card_number(value)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return contains_card_number(str(value))
    if isinstance(value, Mapping):
        return any(find_card_number(k) or find_card_number(v) for k, v in value.items())
    if isinstance(value, Iterable):
        return any(find_card_number(item) for item in value)
    return False
