"""Every ORM model, imported here so Alembic and the app see the whole schema."""

from api.models.account import Account, Role
from api.models.base import Base
from api.models.login import Login, RefreshToken

__all__ = ["Account", "Base", "Login", "RefreshToken", "Role"]
