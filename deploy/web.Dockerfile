# The review app: `gbair web`, server-rendered pages over the coordinator's gRPC API (k8s/base/web.yaml).
# Build from the repository root:
#   docker build -f deploy/web.Dockerfile -t REGISTRY/gbair-web:0.1.0 .
# Only the base install and the web extra: no torch, no Ray, a small image.
FROM python:3.11-slim

COPY pyproject.toml README.md /opt/gbair/
COPY services /opt/gbair/services
RUN pip install --no-cache-dir '/opt/gbair[web]' \
    && useradd --uid 10001 --user-group --no-create-home gbair

USER 10001
EXPOSE 8080
ENTRYPOINT ["gbair"]
CMD ["web", "--host", "0.0.0.0", "--port", "8080", "--target", "gbair-coordinator:50051"]
