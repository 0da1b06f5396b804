# The image deploy/rayservice.yaml and deploy/streamlit.yaml run, whisper-inquiry:latest: this repository
# with the same pinned requirements (requirements.txt, then the serving extra requirements-serve.txt
# constrained by it) and the same bundled models that `make run` and `make serve` install.
#
#   make image                   # torch's CPU build: Streamlit servers, CPU-only Ray workers
#   make image VARIANT=cuda      # torch's CUDA build: the one-GPU Ray workers of deploy/rayservice.yaml
#
# One image, both roles: KubeRay starts Ray in it (`ray` is on PATH) and runs the Serve application
# (whisper_inquiry.serve.app:build_app); the Streamlit Deployment runs `python scripts/serve.py` (the CMD).
# tests/test_image.py ties this file to the manifests, the Makefile and the requirement files.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

# where torch comes from: the CPU build by default; `make image VARIANT=cuda` passes a CUDA index
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# openai-whisper, installed without its CUDA-only triton requirement as the Makefile does (its real
# needs are in requirements.txt); `make image` passes the Makefile's WHISPER_VERSION
ARG WHISPER_VERSION=20250625

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    MALLOC_ARENA_MAX=2

RUN python -m venv /opt/venv
WORKDIR /app

# the requirements first, so a code change rebuilds only the last layers
COPY requirements.txt requirements-serve.txt ./
RUN pip install "torch==$(sed -n 's/^torch==//p' requirements.txt)" --index-url "${TORCH_INDEX}" \
 && pip install -r requirements.txt \
 && pip install --no-deps "openai-whisper==${WHISPER_VERSION}" \
 && pip install -r requirements-serve.txt -c requirements.txt

COPY . .
# the bundled models load once here, so a broken wheel fails the build rather than a class
RUN python -c "from whisper_inquiry.models.load import load_model; [load_model(m, 'cpu') for m in ('tiny.en', 'base')]" \
 && useradd --uid 1000 --create-home whisper
USER 1000

# 8501: Streamlit; 8000: Ray Serve's HTTP proxy (6379, 8265: Ray's GCS and dashboard, KubeRay's ports)
EXPOSE 8501 8000
CMD ["python", "scripts/serve.py", "--server.port", "8501", "--server.address", "0.0.0.0", "--server.headless", "true"]
