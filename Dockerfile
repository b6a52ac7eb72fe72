# edoc-connector: one image for the daemon, the hub emulator and the operator CLI.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends xmlsec1 poppler-utils openssl \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /srv/connector connector
WORKDIR /srv/connector

COPY pyproject.toml README.md ./
COPY connector ./connector
COPY schemas ./schemas
COPY mappings ./mappings
COPY config ./config
RUN pip install --no-cache-dir -e . \
    && mkdir -p /var/lib/connector && chown connector /var/lib/connector

USER connector
ENV CONNECTOR_SCHEMAS=/srv/connector/schemas
# Secrets (hub secret, key passwords, at-rest key) come from the environment or mounted files.
VOLUME ["/var/lib/connector"]
EXPOSE 9108
ENTRYPOINT ["connector"]
CMD ["run", "--config", "/etc/connector/connector.yaml"]
