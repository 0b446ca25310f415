"""Request and response models of the items API."""

from typing import Annotated, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

ItemName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ItemDescription = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]
PriceCents = Annotated[int, Field(ge=0, description="Price in cents (integer, never negative)")]

ItemSort = Literal[
    "id",
    "-id",
    "name",
    "-name",
    "price_cents",
    "-price_cents",
    "created_at",
    "-created_at",
]


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ItemName
    description: ItemDescription | None = None
    price_cents: PriceCents


class ItemUpdate(BaseModel):
    """A partial update: only the fields present in the request are changed."""

    model_config = ConfigDict(extra="forbid")

    name: ItemName | None = None
    description: ItemDescription | None = None
    price_cents: PriceCents | None = None

    @field_validator("name", "price_cents")
    @classmethod
    def _not_null(cls, value: str | int | None) -> str | int:
        if value is None:
            msg = "may be left out but not set to null"
            raise ValueError(msg)
        return value


class Item(BaseModel):
    id: int
    name: str
    description: str | None
    price_cents: int
    created_at: AwareDatetime
    updated_at: AwareDatetime


class ItemQuery(BaseModel):
    """Filters, order and page of `GET /items`."""

    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Case-insensitive substring of the name",
    )
    min_price_cents: int | None = Field(default=None, ge=0)
    max_price_cents: int | None = Field(default=None, ge=0)
    sort: ItemSort = Field(default="id", description="Field to sort by; `-` for descending")
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _price_range(self) -> Self:
        if (
            self.min_price_cents is not None
            and self.max_price_cents is not None
            and self.min_price_cents > self.max_price_cents
        ):
            msg = "min_price_cents must not be greater than max_price_cents"
            raise ValueError(msg)
        return self


class ItemPage(BaseModel):
    items: list[Item]
    total: int
    limit: int
    offset: int
