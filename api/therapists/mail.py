"""The invitation mail: the one message this service ever sends, and it holds no patient data."""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

from api.settings import Settings
from api.therapists.service import Invited


def invitation_message(settings: Settings, invited: Invited) -> EmailMessage:
    invitation = invited.invitation
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = invitation.email
    message["Subject"] = "Your invitation to the KAP integration journal"
    clinic = f" ({invitation.clinic})" if invitation.clinic else ""
    message.set_content(
        f"Hello {invitation.display_name}{clinic},\n\n"
        "You are invited to read what your patients choose to share with you in the KAP "
        "integration journal.\n\n"
        f"Your invitation code, valid until {invitation.expires_at:%Y-%m-%d %H:%M} UTC, for "
        f"{invitation.email} only, and good for one sign-up:\n\n"
        f"    {invited.code}\n\n"
        "Create your account with it (POST /v1/accounts with role `therapist` and "
        "`invitation_code`, or through your clinic's app). If you did not expect this, ignore "
        "this message: without the code nothing happens.\n"
    )
    return message


async def send_invitation(settings: Settings, invited: Invited) -> None:
    """Mail the invitation through JOURNAL_SMTP_URL; raises when the server refuses or is away."""
    assert settings.smtp_url is not None
    url = urlsplit(settings.smtp_url.get_secret_value())
    if url.scheme not in ("smtp", "smtps") or not url.hostname:
        raise ValueError("JOURNAL_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://")
    implicit_tls = url.scheme == "smtps"
    await aiosmtplib.send(
        invitation_message(settings, invited),
        hostname=url.hostname,
        port=url.port or (465 if implicit_tls else 587),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        use_tls=implicit_tls,
        timeout=settings.smtp_timeout_seconds,
    )
