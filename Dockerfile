# edoc-connector: the daemon and the operator CLI, as an agency runs them.
#
# Build:  docker build -t edoc-connector:0.1.0 .
# Run:    see deploy/compose.yaml (the whole agency stack) and README "Container".
# Paths are those of config/connector.example.yaml: configuration, keys and certificates
# under /etc/edoc-connector (mounted read-only), state under /var/lib/edoc-connector, the
# claim-check folder shared with the agency software under /srv/edoc/claim-check, secrets
# in /run/secrets. Metrics and probes on 0.0.0.0:9464 (/metrics, /livez, /readyz).

# --- build: the connector's wheel and the wheels of its dependencies ------------------------
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY connector ./connector
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- runtime: no compiler, no test tools, no source tree ------------------------------------
FROM python:3.11-slim-bookworm
# Cantarell: an OpenType (CFF, 1000 units/em) font with every Vietnamese glyph, for the
# visible seal stamp (trust.pdf.outbound.stamp.font_file in the example configuration).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-cantarell \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 connector \
    && useradd --system --uid 10001 --gid connector --no-create-home \
       --home-dir /var/lib/edoc-connector --shell /usr/sbin/nologin connector \
    && install -d -o connector -g connector -m 0750 \
       /var/lib/edoc-connector /var/lib/edoc-connector/crl /srv/edoc/claim-check \
    && install -d -m 0755 /etc/edoc-connector
COPY --from=build /wheels /tmp/wheels
# Installed from the wheel, never editable: what runs is exactly what ships.
RUN pip install --no-cache-dir --no-index --find-links=/tmp/wheels edoc-connector \
    && rm -rf /tmp/wheels

# Every sub-command reads its configuration from here unless given --config.
ENV CONNECTOR_CONFIG=/etc/edoc-connector/connector.yaml \
    CONNECTOR_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/edoc-connector
VOLUME ["/var/lib/edoc-connector", "/srv/edoc/claim-check"]
EXPOSE 9464
# Liveness only: a hub or broker outage makes /readyz 503 but must not restart the daemon.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/livez', timeout=4)"]
ENTRYPOINT ["connector"]
CMD ["run"]
