# vitalstream: gateway, worker, notifier and console from one image
# (docker/compose.yaml runs one container per process). Slim, non-root, and
# without Kafka's jars or any other service: those are their own images.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY analytics analytics
COPY devices devices
COPY streams streams
RUN python -m venv /opt/vitalstream \
 && /opt/vitalstream/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/vitalstream/bin/pip install --no-cache-dir .

FROM python:3.11-slim
COPY --from=build /opt/vitalstream /opt/vitalstream
RUN useradd --system --uid 10001 --home-dir /var/lib/vitalstream --create-home vitalstream
ENV PATH=/opt/vitalstream/bin:$PATH \
    PYTHONUNBUFFERED=1
USER vitalstream
WORKDIR /var/lib/vitalstream
# Prometheus metrics of whichever process the container runs (VITALSTREAM_METRICS__*).
EXPOSE 9108 9109 9110 9111
CMD ["vitalstream", "--help"]
