# The triggergate gateway image. Build from the repository root:
#   docker build -t <registry>/triggergate:0.1.0 .
# Two stages: `build` makes the wheel and installs it into a virtualenv; the final stage gets only
# that virtualenv (no compiler, no pip cache, no sources), runs as UID/GID 10001 and keeps no state
# in the image: manifests, secrets and the state directory are mounted (charts/triggergate does).
# Pin the base by digest in your build pipeline (`python:3.11.14-slim-bookworm@sha256:...`).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sensors/ sensors/
COPY gateway/ gateway/
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/triggergate \
 && /opt/triggergate/bin/pip install /wheels/triggergate-*.whl

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="triggergate" \
      org.opencontainers.image.description="Event-driven trigger gateway for Argo Events EventSource and Sensor manifests" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 triggergate \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/triggergate \
            --shell /usr/sbin/nologin triggergate \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/triggergate \
 && install -d -m 0755 /etc/triggergate/manifests /var/run/triggergate/secrets
COPY --from=build /opt/triggergate /opt/triggergate
ENV PATH=/opt/triggergate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /var/lib/triggergate
EXPOSE 12000
ENTRYPOINT ["triggergate"]
CMD ["run", "/etc/triggergate/manifests", "--state-dir", "/var/lib/triggergate", "--secrets-dir", "/var/run/triggergate/secrets"]
