"""Response model of the uploads API."""

from pydantic import BaseModel, Field


class StoredUpload(BaseModel):
    id: str = Field(description="Name of the stored file in the upload directory")
    filename: str = Field(description="The client's file name, reduced to safe characters")
    content_type: str
    size: int = Field(description="Size in bytes")
    sha256: str = Field(description="Hex SHA-256 digest of the content")
