from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class PairingCodeRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"code": "K7QP-4XM9-2RTD", "expires_at": "2026-11-21T09:22:44.913Z"}]
        }
    )

    code: str = Field(
        description="Give it to your patient: 12 characters in three groups, no 0/O, 1/I/L or U."
    )
    expires_at: datetime = Field(description="10 minutes from now; the code works once.")


class PairedTherapist(BaseModel):
    display_name: str
    clinic: str | None
    verified: bool = Field(description="Always true: only verified therapists make codes.")


class PairingPreview(BaseModel):
    """Who a code would share with: nothing else about them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "therapist": {
                        "display_name": "Dr. Lee",
                        "clinic": "Harbor Integration Clinic",
                        "verified": True,
                    },
                    "expires_at": "2026-11-21T09:22:44.913Z",
                }
            ]
        }
    )

    therapist: PairedTherapist
    expires_at: datetime
