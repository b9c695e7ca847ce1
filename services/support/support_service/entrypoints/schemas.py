"""REST request bodies (strict: JSON types as written)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictInt

from ecomops_platform.strict import StrictRequestModel

Id = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(min_length=1, max_length=5000)]
Note = Annotated[str, Field(min_length=1, max_length=2000)]
CategoryName = Literal["delivery", "payment", "return", "product", "account", "other"]
Language = Literal["en", "zh"]


class TicketIn(StrictRequestModel):
    order_id: Id | None = None
    category: CategoryName
    subject: Annotated[str, Field(min_length=1, max_length=200)]
    message: Text
    language: Language | None = None
    #: ops only: the customer the ticket is for (customers: themselves).
    customer_id: Id | None = None


class MessageIn(StrictRequestModel):
    body: Text


class AutoReplyIn(StrictRequestModel):
    solved: StrictBool


class NoteIn(StrictRequestModel):
    note: Note


class ResolveIn(StrictRequestModel):
    note: Annotated[str, Field(max_length=2000)] = ""


class CompensationIn(StrictRequestModel):
    rule_id: Annotated[str, Field(min_length=1, max_length=100)]


class RatingIn(StrictRequestModel):
    csat: Annotated[StrictInt, Field(ge=1, le=5)]
    nps: Annotated[StrictInt, Field(ge=0, le=10)]
    comment: Annotated[str, Field(max_length=2000)] = ""


class ArticleIn(StrictRequestModel):
    title: Annotated[str, Field(min_length=1, max_length=300)]
    body: Annotated[str, Field(min_length=1, max_length=20000)]
    category: CategoryName
    language: Language
    keywords: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=50)
    ] = []
