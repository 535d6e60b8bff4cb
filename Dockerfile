# The dockyard runtime image: dockyard installed, no flows baked in. It serves the
# project mounted at /app (its dockyard.yaml, or DOCKYARD_ENTRYPOINT relative to /app).
# To bake flows into an image, use `dockyard build` instead.
#
#   docker build -t dockyard:0.1.0 .                      # official python:3.11-slim
#   docker build --build-arg BASE_IMAGE=my-python:3.11 .   # any image with python3 + venv
#   scripts/docker-build -t dockyard:0.1.0                 # the same, with the OCI labels
#                                                          # (version, revision, created, source)
#   docker run -v "$PWD/flows:/app:ro" -v dockyard-data:/data -p 127.0.0.1:8080:8080 dockyard:0.1.0
#
# Dependencies are installed at the exact versions of constraints.txt (scripts/lock), so
# two builds of one commit get the same packages.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS install
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md constraints.txt /src/
COPY src/ /src/src/
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -c /src/constraints.txt /src

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/dockyard \
    DOCKYARD_HOST=0.0.0.0 \
    DOCKYARD_PORT=8080 \
    DOCKYARD_STATE=/data/state.db \
    DOCKYARD_WEBSERVER=true
RUN (groupadd --gid 10001 dockyard \
     && useradd --no-create-home --uid 10001 --gid 10001 --home-dir /home/dockyard \
        --shell /usr/sbin/nologin dockyard \
     || (echo 'dockyard:x:10001:' >> /etc/group \
         && echo 'dockyard:x:10001:10001::/home/dockyard:/usr/sbin/nologin' >> /etc/passwd)) \
 && mkdir -p /home/dockyard /data /app \
 && chown 10001:10001 /home/dockyard /data
COPY --from=install /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/dockyard-entrypoint
WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('DOCKYARD_PORT', '8080'), timeout=4)"]
# OCI annotations (https://specs.opencontainers.org/image-spec/annotations/): version,
# revision, created and source come from build args (scripts/docker-build passes them all);
# those not given stay empty. The revision is also DOCKYARD_BUILD_REVISION, which the
# dockyard_build_info metric reports. Last, so that new values change no layer.
ARG DOCKYARD_VERSION=""
ARG DOCKYARD_REVISION=""
ARG DOCKYARD_CREATED=""
ARG DOCKYARD_SOURCE=""
LABEL org.opencontainers.image.title="dockyard" \
      org.opencontainers.image.description="Serve Python workflows from long-lived containers: schedules, subprocess runs, state, health, metrics." \
      org.opencontainers.image.version="${DOCKYARD_VERSION}" \
      org.opencontainers.image.revision="${DOCKYARD_REVISION}" \
      org.opencontainers.image.created="${DOCKYARD_CREATED}" \
      org.opencontainers.image.source="${DOCKYARD_SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV DOCKYARD_BUILD_REVISION=${DOCKYARD_REVISION}
STOPSIGNAL SIGTERM
# The script execs dockyard, so dockyard is PID 1: it drains on SIGTERM and reaps orphans.
ENTRYPOINT ["/usr/local/bin/dockyard-entrypoint"]
