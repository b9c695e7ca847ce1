"""The platform's card-number screen: 13–19 digits, Luhn-valid, card-like prefix, anywhere,
grouped or not, after normalisation; our own hex ids are never taken for card numbers."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecomops_platform.cards import (
    CARD_NUMBER_CODE,
    card_number_refused,
    contains_card_number,
    find_card_number,
    luhn_valid,
    message_has_card_number,
    normalise,
)


def with_check_digit(body: str) -> str:
    for d in "0123456789":
        if luhn_valid(body + d):
            return body + d
    raise AssertionError


def test_known_test_cards_are_found() -> None:
    for pan in ("4111111111111111", "5555555555554444", "378282246310005", "4222222222222"):
        assert contains_card_number(pan)
        assert contains_card_number(f"my card is {pan}, thanks")
        assert contains_card_number(f"SKU-{pan}")
        assert contains_card_number(f"sess_{pan}")


def test_grouped_digits_are_found() -> None:
    assert contains_card_number("4111 1111 1111 1111")
    assert contains_card_number("4111-1111-1111-1111")
    assert contains_card_number("4303.6967.6287.0492")
    assert contains_card_number("4111 - 1111 - 1111 - 1111")
    assert contains_card_number("4111\t1111\n1111 1111")
    assert contains_card_number("ref 12 4111 1111 1111 1111")  # a number beside it hides nothing


def test_a_long_run_of_groups_before_the_pan_hides_nothing() -> None:
    assert contains_card_number("1 2 3 4 5 6 7 8 9 0 1 2 3 4111 1111 1111 1111 9 9")


def test_normalised_before_screening() -> None:
    full_width = "".join(chr(ord(c) - ord("0") + 0xFF10) for c in "4111111111111111")
    assert normalise(full_width) == "4111111111111111"
    assert contains_card_number(full_width)
    assert contains_card_number("4111\u200b1111\u200b1111\u200b1111")  # zero-width spaces
    assert contains_card_number("41\u00ad11 1111 1111 1111\ufeff")  # soft hyphen, BOM
    assert contains_card_number("4111\u20131111\u20131111\u20131111")  # en dashes
    assert contains_card_number("4111\u00a01111\u00a01111\u00a01111")  # no-break spaces
    arabic = "".join(chr(0x0660 + int(c)) for c in "4111111111111111")
    assert contains_card_number(arabic)


def test_non_luhn_short_and_non_card_numbers_pass() -> None:
    assert not contains_card_number("4111111111111112")
    assert not contains_card_number("411111111111")  # 12 digits
    assert not contains_card_number("tok_ok_123")
    assert not contains_card_number("N1 1AA")
    assert not contains_card_number("41111111111111111111111")  # one 23-digit number
    # Epoch milliseconds (first digit 1) and other non-card prefixes are not card numbers.
    assert not contains_card_number(with_check_digit("173305123456"))
    assert not contains_card_number(with_check_digit("900000000000000"))


def test_our_own_ids_are_never_taken_for_card_numbers() -> None:
    # This UUID hex holds a Luhn-valid 16-digit run: it is an order id, not a card number.
    assert not contains_card_number("015505bc53065827920520589b8bbdb2")
    assert not contains_card_number("/v1/orders/015505bc53065827920520589b8bbdb2/payments")
    assert not contains_card_number("015505bc-5306-5827-9205-20589b8bbdb2")


@settings(max_examples=3000, deadline=None)
@given(st.uuids())
def test_no_uuid_is_a_card_number(value: uuid.UUID) -> None:
    assert not contains_card_number(value.hex)
    assert not contains_card_number(str(value))
    assert not contains_card_number(f"ord-{value.hex}")


def test_nested_values_are_walked() -> None:
    assert find_card_number({"a": [{"b": "x 4111111111111111"}]})
    assert find_card_number({"4111111111111111": "key"})
    assert find_card_number({"quantity": 4111111111111111})
    assert not find_card_number({"quantity": 2, "flag": True, "name": "Ada"})


def test_protobuf_messages_are_walked() -> None:
    from google.protobuf import struct_pb2

    clean = struct_pb2.Struct()
    clean.update({"a": {"b": ["x", 1]}})
    assert not message_has_card_number(clean)
    dirty = struct_pb2.Struct()
    dirty.update({"a": {"b": ["x", "pay 4111 1111 1111 1111"]}})
    assert message_has_card_number(dirty)


def test_the_refusal_never_echoes_the_number() -> None:
    problem = card_number_refused().problem()
    assert problem["type"].endswith("/" + CARD_NUMBER_CODE)
    assert problem["status"] == 422
    assert not any(ch.isdigit() for ch in str(problem["detail"]))


PREFIXES = st.sampled_from(["4", "51", "55", "2221", "34", "37", "36", "6011", "62", "35"])


@given(
    prefix=PREFIXES,
    body=st.text(alphabet="0123456789", min_size=12, max_size=14),
    pad=st.text(max_size=5),
    sep=st.sampled_from(["", " ", "-", ".", "\u200b"]),
)
def test_any_luhn_valid_pan_is_found(prefix: str, body: str, pad: str, sep: str) -> None:
    pan = with_check_digit(prefix + body)
    grouped = sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))
    safe_pad = "".join(c for c in pad if not c.isdigit() and normalise(c) not in " -.")
    safe_pad = "".join(c for c in safe_pad if normalise(c) == c and not c.isspace())
    assert contains_card_number(f"{safe_pad}{grouped}{safe_pad}")


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-01T17:21:15.123456+00:00",
        "Proof warehouse 12, bay 4",
        "+33 6 12 34 56 78",
        "192.168.100.200",
        "EUR 1234.56",
    ],
)
def test_ordinary_text_passes(text: str) -> None:
    assert not contains_card_number(text)


def test_events_carrying_a_card_number_are_poison() -> None:
    from google.protobuf import struct_pb2

    from ecomops_platform.cards import CardNumberInEvent, screen_event

    event = struct_pb2.Struct()
    event.update({"session_id": "4111 1111 1111 1111"})
    with pytest.raises(CardNumberInEvent):
        screen_event(event)
    event.update({"session_id": "0f5c3e2a9b8d4c7e8f6a5b4c3d2e1f00"})
    screen_event(event)


def test_log_lines_never_carry_a_card_number() -> None:
    from ecomops_platform.logging import redact

    assert "4111" not in redact("paid with 4111 1111 1111 1111")
    assert "6967" not in redact("line1 4303.6967.6287.0492")
    assert redact("order 015505bc53065827920520589b8bbdb2 paid") == (
        "order 015505bc53065827920520589b8bbdb2 paid"
    )
