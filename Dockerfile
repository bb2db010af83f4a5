# Build: resolve and install from uv.lock into a virtualenv; run: copy only that virtualenv.
FROM python:3.11-slim AS build
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY api ./api
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 journal
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 JOURNAL_DATA_DIR=/app/data
RUN mkdir -p /app/data && chown journal /app/data
USER journal
EXPOSE 8000
# Migrations are a one-off: docker run --rm IMAGE alembic upgrade head
# In-flight requests get 20 s to finish on SIGTERM (under Kubernetes' default 30 s grace; with
# JOURNAL_DRAIN_SECONDS set, drain plus 20 s must stay under it). Forwarded headers are believed
# from JOURNAL_TRUSTED_PROXIES only (the load balancers' addresses or networks): the app applies
# the same list itself, so any launcher honours it.
ENV JOURNAL_TRUSTED_PROXIES=127.0.0.1
CMD ["sh", "-c", "exec uvicorn api.main:app --host 0.0.0.0 --port 8000 --no-access-log --proxy-headers --forwarded-allow-ips \"$JOURNAL_TRUSTED_PROXIES\" --timeout-graceful-shutdown 20"]
