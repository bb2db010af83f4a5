from __future__ import annotations

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.repository import AccountRepository
from api.accounts.schemas import AccountCreate, AccountUpdate
from api.auth.dependencies import Caller, PasswordAttempts
from api.auth.passwords import Passwords
from api.errors import Conflict, Forbidden, PreconditionFailed, UnprocessableContent
from api.models import Account, AuditRecord, Erasure, Grant, IdempotencyRecord, Role
from api.models.base import utcnow
from api.preconditions import require_match
from api.therapists import service as therapists

INVITATION_REFUSED = (
    "A therapist account needs a valid invitation code for this email: ask the operator for one. "
    "Nothing was created."
)


async def create_account(
    session: AsyncSession, passwords: Passwords, data: AccountCreate
) -> Account:
    """A patient signs up freely; a therapist only with a pending invitation for this email,
    which the sign-up uses up, and is then verified with the invitation's name and clinic."""
    values: dict[str, object] = {
        "email": data.email,
        "password_hash": await passwords.hash(data.password),
        "display_name": data.display_name,
        "role": data.role,
        "time_zone": data.time_zone,
    }
    if data.role is Role.THERAPIST:
        invitation = (
            await therapists.redeem(session, data.invitation_code, data.email)
            if data.invitation_code
            else None
        )
        if invitation is None:
            raise Forbidden(INVITATION_REFUSED)
        values |= {
            "display_name": data.display_name or invitation.display_name,
            "verified": True,
            "clinic": invitation.clinic,
        }
    else:
        assert data.display_name is not None  # the schema requires it of a patient
    # INSERT ... ON CONFLICT DO NOTHING: an email already taken makes no error in the database
    # (a unique violation would be written to the database server's own log, email included).
    # The request is the unit of work: on a conflict its rollback leaves the invitation unused.
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    account: Account | None = await session.scalar(
        insert(Account)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[Account.email])
        .returning(Account)
    )
    if account is None:
        raise Conflict("An account with this email already exists.")
    return account


async def update_account(
    session: AsyncSession,
    passwords: Passwords,
    attempts: PasswordAttempts,
    caller: Caller,
    data: AccountUpdate,
    if_match: str | None,
) -> Account:
    account = await caller.account(session)
    require_match(if_match, account.version)
    values: dict[str, object] = {}
    if data.display_name is not None:
        values["display_name"] = data.display_name
    if data.time_zone is not None:
        values["time_zone"] = data.time_zone
    if data.password is not None:
        assert data.current_password is not None  # the schema requires it
        await attempts.spend(account.email)
        matches, _ = await passwords.verify(data.current_password, account.password_hash)
        if not matches:
            raise UnprocessableContent(
                "current_password is not this account's password.", loc=("body", "current_password")
            )
        values["password_hash"] = await passwords.hash(data.password)
    repository = AccountRepository(session)
    if not await repository.update_versioned(account, account.version, **values):
        raise PreconditionFailed("The account changed since you read it: read it again and retry.")
    if data.display_name is not None and caller.role is Role.PATIENT:
        # Therapists see the new name on live grants only; an ended grant keeps the old one.
        await session.execute(
            update(Grant)
            .where(
                Grant.patient_id == account.id,
                Grant.revoked_at.is_(None),
                Grant.expires_at > utcnow(),
            )
            .values(patient_name=data.display_name)
        )
    if data.password is not None:
        # A new password ends every other sign-in: whoever knew the old one is logged out.
        await repository.revoke_logins(account.id, keep=caller.login_id, at=utcnow())
    return account


async def erase_account(
    session: AsyncSession,
    passwords: Passwords,
    attempts: PasswordAttempts,
    caller: Caller,
    password: str,
) -> None:
    """Erase the account and everything of it; leave only the fact that an erasure happened.

    Journal entries, tombstones, logins, refresh tokens, grants (given or received), idempotency
    records and change counters go with the account row (foreign keys, ON DELETE CASCADE). The
    access log about a patient goes too: it is theirs. A therapist's reads stay in the logs of
    the patients they read, shown as "a therapist whose account was deleted".
    """
    account = await caller.account(session)
    await attempts.spend(account.email)
    matches, _ = await passwords.verify(password, account.password_hash)
    if not matches:
        raise Forbidden("The password does not match: nothing was erased.")
    if session.get_bind().dialect.name != "postgresql":
        await _erase_rows(session, caller)  # SQLite: one writer at a time, nothing to deadlock
        return
    # The audit table refuses deletes except in a transaction that declares an erasure.
    await session.execute(text("SET LOCAL journal.erasure = 'on'"))
    # The caller's own writes queue behind the account row this request holds (see
    # AccountRepository.role_with_live_login); other people's requests that touch the
    # account's rows (a therapist's read, a grant) can still meet the cascade in another
    # order. PostgreSQL then picks one of the two to fail: if it is the erasure, its rows are
    # rolled back to the savepoint and it runs again.
    for attempt in range(1, ERASURE_ATTEMPTS + 1):
        try:
            async with session.begin_nested():
                await _erase_rows(session, caller)
            return
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != DEADLOCK or attempt == ERASURE_ATTEMPTS:
                raise


ERASURE_ATTEMPTS = 3
DEADLOCK = "40P01"  # PostgreSQL's deadlock_detected


async def _erase_rows(session: AsyncSession, caller: Caller) -> None:
    if caller.role is Role.PATIENT:
        await session.execute(delete(AuditRecord).where(AuditRecord.patient_id == caller.id))
    else:
        # The grants given to a therapist go with them (cascade); so do the patients' stored
        # answers to those grants, which name the therapist (they are the patients' rows).
        given = select(Grant.id).where(Grant.therapist_id == caller.id)
        await session.execute(
            delete(IdempotencyRecord)
            .where(IdempotencyRecord.resource_id.in_(given))
            .execution_options(synchronize_session=False)
        )
    await session.execute(delete(Account).where(Account.id == caller.id))
    session.add(Erasure(role=caller.role.value))
    await session.flush()
