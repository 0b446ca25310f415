"""Request and response models of users and their tokens."""

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

# Long enough to resist guessing; capped so that hashing a password stays cheap.
PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 128

Password = Annotated[str, Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: Password
    full_name: FullName | None = None


class UserUpdate(BaseModel):
    """The fields of the own profile a user may change; absent fields keep their value."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = Field(default=None, json_schema_extra={"nullable": False})
    full_name: FullName | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[str, Field(max_length=PASSWORD_MAX_LENGTH)]
    new_password: Password


class User(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: EmailStr
    full_name: str | None
    is_active: bool
    is_superuser: bool
    created_at: AwareDatetime
    updated_at: AwareDatetime


class UserPage(BaseModel):
    items: list[User]
    total: int
    limit: int
    offset: int


class Token(BaseModel):
    """An OAuth 2 access token response (RFC 6749, section 5.1)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int
