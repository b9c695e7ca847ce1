"""Card-number detection: 13–19 digits, Luhn-valid, anywhere, grouped or not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from order_service.domain.cards import contains_card_number, find_card_number, luhn_valid


def with_check_digit(body: str) -> str:
    for d in "0123456789":
        if luhn_valid(body + d):
            return body + d
    raise AssertionError


def test_known_test_cards_are_found() -> None:
    for pan in ("4111111111111111", "5555555555554444", "378282246310005", "4222222222222"):
        assert contains_card_number(pan)
        assert contains_card_number(f"my card is {pan}, thanks")


def test_grouped_digits_are_found() -> None:
    assert contains_card_number("4111 1111 1111 1111")
    assert contains_card_number("4111-1111-1111-1111")
    assert contains_card_number("ref 12 4111 1111 1111 1111")  # a number beside it hides nothing


def test_non_luhn_and_short_numbers_pass() -> None:
    assert not contains_card_number("4111111111111112")
    assert not contains_card_number("411111111111")  # 12 digits
    assert not contains_card_number("tok_ok_123")
    assert not contains_card_number("N1 1AA")


def test_nested_values_are_walked() -> None:
    assert find_card_number({"a": [{"b": "x 4111111111111111"}]})
    assert find_card_number({"quantity": 4111111111111111})
    assert not find_card_number({"quantity": 2, "flag": True, "name": "Ada"})


@given(body=st.text(alphabet="0123456789", min_size=12, max_size=18), pad=st.text(max_size=5))
def test_any_luhn_valid_pan_is_found(body: str, pad: str) -> None:
    pan = with_check_digit(body)
    safe_pad = "".join(c for c in pad if not c.isdigit() and c not in " -")
    assert contains_card_number(f"{safe_pad}{pan}{safe_pad}")
