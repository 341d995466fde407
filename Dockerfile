FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY nomira ./nomira
RUN pip install --no-cache-dir . && useradd --create-home nomira && mkdir -p /data && chown nomira /data
USER nomira
EXPOSE 8787
ENTRYPOINT ["nomira"]
CMD ["--help"]
