# nexus-server in a container: non-root, the store in a volume, logs on stderr.
#   docker build -t nexus-chat .
#   docker run -d --name nexus -p 9999:9999 -v nexus-data:/data nexus-chat
#   docker exec nexus nexus-server backup /data/backup.json
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY nexus ./nexus
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin nexus \
    && mkdir -p /data && chown nexus:nexus /data && chmod 0700 /data
USER nexus
WORKDIR /data
VOLUME ["/data"]
ENV NEXUS_HOST=0.0.0.0 \
    NEXUS_PORT=9999 \
    NEXUS_DATA=/data/nexus_data.json \
    NEXUS_LOG=- \
    PYTHONUNBUFFERED=1
EXPOSE 9999
# Healthy once the server answers a ping (no account needed). With TLS on
# (NEXUS_TLS=on or --tls), set NEXUS_CHAT_TLS=on too so the ping speaks TLS.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["nexus-chat", "ping", "127.0.0.1", "9999"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["nexus-server"]
