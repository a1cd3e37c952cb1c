# feed-ingest: the daemon in a small image.
#   docker build -t feed-ingest .
#   docker run -d --name ingest -p 8080:8080 -v ingest-data:/data --env-file ingest.env feed-ingest
# The store and an optional ingest.toml live in the /data volume; every setting can also be an
# INGEST_* variable (see README.md). Without a config, the shipped seed posts are ingested.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY ingest ingest
COPY storage storage
COPY scheduler scheduler
COPY seeds seeds
# The postgres extra brings the PostgreSQL driver: replicas sharing one database (docs/scaling.md).
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres]'

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INGEST_DB=sqlite:////data/ingest.db \
    INGEST_SERVE_HOST=0.0.0.0
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin ingest \
    && mkdir -p /data && chown ingest:ingest /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'feed-ingest[postgres]' \
    && rm -rf /wheels
USER ingest
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["ingest", "healthcheck"]
CMD ["ingest", "serve"]
