FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY nomira ./nomira
# EXTRAS="[postgres]" adds psycopg for a PostgreSQL store (docker compose --profile postgres sets it)
ARG EXTRAS=""
RUN pip install --no-cache-dir ".${EXTRAS}" && useradd --create-home nomira && mkdir -p /data && chown nomira /data
USER nomira
EXPOSE 8787
ENTRYPOINT ["nomira"]
CMD ["--help"]
