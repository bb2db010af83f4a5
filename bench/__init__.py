"""The load benchmark: the service against a raw Starlette + asyncpg baseline (see README.md)."""
