# feed-ingest container image. Build: docker build -t feed-ingest .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ingest ingest
COPY storage storage
COPY scheduler scheduler
COPY seeds seeds
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 ingest && mkdir /data && chown ingest /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER ingest
WORKDIR /data
ENV INGEST_DB=sqlite:////data/ingest.db
VOLUME /data
CMD ["ingest", "run"]
