# The devstack token issuer for the compose stack (development only: it hands the Order Service's token to
# anybody on the compose network). Build context: repository root (docker-compose.yml sets it).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The inventory's pinned closure already holds what the issuer imports (PyJWT, cryptography).
COPY inventory_service/requirements.txt /tmp/requirements.txt
RUN pip install --no-deps -r /tmp/requirements.txt \
    && pip check \
    && rm /tmp/requirements.txt \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin valerix \
    && mkdir -p /identity/keys /identity/tls && chown -R 10001 /identity

WORKDIR /app
COPY --chown=root:root devstack/__init__.py /app/devstack/__init__.py
COPY --chown=root:root devstack/identity/ /app/devstack/identity/
COPY --chown=root:root order_functions/__init__.py /app/order_functions/__init__.py
COPY --chown=root:root order_functions/domain/ /app/order_functions/domain/

USER 10001
EXPOSE 7072
CMD ["python", "-m", "devstack.identity", "serve"]
