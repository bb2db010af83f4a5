"""What every journal entry shares, on the way in and on the way out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from api.models.base import utcnow

# The kinds of journal entry, by their plural (a path's and a sync group's name): spelled out for the
# type checker, checked against ``api.resources.RESOURCES`` by tests/unit/test_every_kind.py.
ResourceName = Literal["sessions", "intentions", "reflections", "checkins", "assessments"]

FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks on phones drift; more than this is an error


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    # Compared before converting: converting year 1 or 9999 to UTC can overflow.
    if not (
        EARLIEST.replace(tzinfo=None) < value.replace(tzinfo=None) < LATEST.replace(tzinfo=None)
    ):
        raise ValueError("must be between the years 1900 and 2200")
    return value.astimezone(UTC)


# Validation context key: where a sync asks for times from fast clocks to be adjusted, not refused.
CLOCK_ADJUSTED = "clock_adjusted"


def _not_future(value: datetime, info: ValidationInfo) -> datetime:
    value = _in_range(value)
    if value > utcnow() + FUTURE_TOLERANCE:
        adjusted = info.context.get(CLOCK_ADJUSTED) if isinstance(info.context, dict) else None
        if adjusted is None:
            raise ValueError("must not be more than 5 minutes in the future")
        # A sync: the phone's clock runs ahead, and the entry would be refused on every retry
        # until real time caught up. Stored at the server's receipt time, and flagged.
        adjusted.append(info.field_name)
        return utcnow()
    return value


# For filters: any sane time, in the future too.
QueryTime = Annotated[AwareDatetime, AfterValidator(_in_range)]


EntryTime = Annotated[
    AwareDatetime,
    AfterValidator(_not_future),
    Field(description="RFC 3339 with a zone; at most 5 minutes in the future. Stored as UTC."),
]
Private = Annotated[
    bool,
    Field(
        strict=True,
        description="A private entry is never shown to any therapist, whatever the grant says.",
    ),
]


class EntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID | None = Field(
        default=None,
        description="Your own UUID for the entry (offline first); the server makes one when absent. "
        "Sending the same id and body again answers as the first time; another body is 409.",
    )
    private: Private = False


class EntryUpdate(BaseModel):
    """Fields sent are changed; fields left out stay. Optional fields may be set to null."""

    model_config = ConfigDict(extra="forbid")

    # Fields a PATCH may leave out but never set to null.
    not_null: ClassVar[frozenset[str]] = frozenset({"private"})

    private: Private | None = None

    @model_validator(mode="after")
    def _required_fields_stay_set(self) -> Self:
        for name in self.not_null & self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The documented body refuses null where the validator above does (``not_null``)."""
        schema = handler(core_schema)
        properties = handler.resolve_ref_schema(schema).get("properties", {})
        for name in cls.not_null:
            field = properties.get(name, {})
            options = field.get("anyOf")
            if options and {"type": "null"} in options:
                (kept,) = [option for option in options if option != {"type": "null"}]
                field.pop("anyOf")
                field.update(kept)
        return schema


class EntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    private: bool
    version: int = Field(description='The current version: the ETag is `"<version>"`.')
    created_at: datetime = Field(description="When the server first stored it.")
    updated_at: datetime
    clock_adjusted: bool = Field(
        default=False,
        description="Sent by a sync with its own time more than 5 minutes in the future (a phone "
        "clock running ahead): stored at the server's receipt time instead.",
    )


ReadT = TypeVar("ReadT", bound=EntryRead)


def _page_examples(schema: dict[str, Any], model: type[Any]) -> None:
    """A page's example: one item, the first example of the entry it lists, and a next cursor."""
    (item,) = get_args(model.model_fields["items"].annotation)
    if not (isinstance(item, type) and issubclass(item, BaseModel)):
        return  # the generic Page itself
    extra = item.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    if isinstance(examples, list):
        schema["examples"] = [
            {
                "items": examples[:1],
                "next_cursor": "MjAyNi0xMS0yMFQwOTowMDowMCswMDowMHw4OWU4MmU3MC0yOGU3LTQ0ZjktOThmMy01ZmNmOTZiMmE0OTE",
            }
        ]


class Page(BaseModel, Generic[ReadT]):
    model_config = ConfigDict(json_schema_extra=_page_examples)

    items: list[ReadT]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
