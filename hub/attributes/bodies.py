"""What an admin sends to define an attribute, and what an agent sends to set values."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)

from hub.attributes.kinds import KEY_PATTERN
from schemas.rest.attributes import AppliesTo, AttributeType

Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Option = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
MAX_OPTIONS = 50


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DefinitionBody(Body):
    key: str = Field(pattern=KEY_PATTERN, description="a-z, 0-9 and _, starting with a letter")
    label: Label
    type: AttributeType
    applies_to: AppliesTo
    options: list[Option] = Field(
        default_factory=list, max_length=MAX_OPTIONS, description="A list's choices (required)"
    )

    @model_validator(mode="after")
    def _options(self) -> DefinitionBody:
        self.options = list(dict.fromkeys(self.options))
        if self.type == "list" and not self.options:
            raise ValueError("a list attribute needs at least one option")
        if self.type != "list" and self.options:
            raise ValueError("only a list attribute has options")
        return self


class DefinitionPatch(Body):
    """The key, type and subject stay: values and rules depend on them."""

    label: Label | None = None
    options: list[Option] | None = Field(
        default=None,
        max_length=MAX_OPTIONS,
        description="A list's whole set of choices; values no longer among them are removed",
    )


class ValuesBody(Body):
    values: dict[str, StrictStr | StrictInt | StrictFloat | None] = Field(
        max_length=50, description="By key; null clears it. Keys left out keep their value."
    )
