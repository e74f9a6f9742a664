# syncd: one small image, pinned dependencies, non-root.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first (cached until pyproject.toml or constraints.txt change), then the code.
COPY pyproject.toml constraints.txt README.md ./
COPY syncd ./syncd
COPY connectors ./connectors
RUN pip install -c constraints.txt . \
    && useradd --create-home --uid 10001 syncd

USER syncd
ENTRYPOINT ["syncd"]
CMD ["sandbox", "serve"]
