# syncd: one small image, pinned dependencies, non-root, with a health check.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SYNCD_LISTEN=0.0.0.0:8787

WORKDIR /app

# Dependencies first (cached until pyproject.toml or constraints.txt change), then the code and the shipped config.
COPY pyproject.toml constraints.txt README.md ./
COPY syncd ./syncd
COPY connectors ./connectors
COPY sandbox ./sandbox
RUN pip install -c constraints.txt . \
    && useradd --create-home --uid 10001 syncd \
    && mkdir -p /app/var \
    && chown syncd /app/var
COPY config ./config
COPY mappings ./mappings

USER syncd
# The store defaults to sqlite:///var/syncd.db, i.e. /app/var: mount a volume there to keep state.
VOLUME ["/app/var"]
EXPOSE 8787

# /healthz on the port SYNCD_LISTEN names (the daemon's loops are alive).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('SYNCD_LISTEN', '127.0.0.1:8787').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

ENTRYPOINT ["syncd"]
CMD ["run", "--config", "/app/config", "--mappings", "/app/mappings"]
