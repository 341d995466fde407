# The team collector: `docker compose up` (docker-compose.yml) or
#   docker run -e NOMIRA_DASHBOARD_PASSWORD=... -p 8787:8787 -v nomira-data:/data IMAGE
# Any other command works too: docker run --rm -v nomira-data:/data IMAGE tenant create acme
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY nomira ./nomira
# EXTRAS="[postgres]" adds psycopg for a PostgreSQL store (docker compose --profile postgres sets it)
ARG EXTRAS=""
RUN pip install --no-cache-dir ./${EXTRAS} \
    && useradd --create-home --uid 10001 nomira \
    && mkdir -p /data && chown 10001:10001 /data
USER 10001:10001
ENV NOMIRA_DB=/data/nomira.db PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 8787
# the slim image has no curl: ask /healthz with the image's own Python
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8787/healthz', timeout=4)"]
ENTRYPOINT ["nomira"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8787"]
