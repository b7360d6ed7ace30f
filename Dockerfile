# syntax=docker/dockerfile:1.7
# PARLE on a CUDA box: one image for the server (`serve`, the default) and the LiveKit worker
# (`agent start`). vLLM is not in here: it runs from its own official image (deploy/compose.yaml).
#
#   docker build -t parle .                                  # weights from a mounted HF cache
#   docker build -t parle --build-arg BAKE_MODELS=1 \
#       --secret id=hf_token,env=HF_TOKEN .                  # weights baked into the image
#
# CUDA 12 runtime + cuDNN 9: what CTranslate2 (faster-whisper) links against; torch brings its
# own CUDA libraries as wheels.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# The web page's WebRTC mode loads LiveKit's browser SDK from the server (same as make web-vendor).
FROM node:22-bookworm-slim AS web
WORKDIR /tmp/web
RUN npm pack --silent livekit-client@2.23.0 \
    && tar xzf livekit-client-*.tgz package/dist/livekit-client.umd.js

FROM ${CUDA_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/parle \
    PATH=/opt/parle/bin:$PATH

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin parle \
    && python3 -m venv $VIRTUAL_ENV

# Dependencies in their own layer, pinned with hashes (`make lock` regenerates the file): a
# code change does not reinstall torch.
COPY deploy/requirements-gpu.lock /tmp/requirements.lock
RUN pip install --require-hashes --no-deps -r /tmp/requirements.lock && rm /tmp/requirements.lock

WORKDIR /app
COPY pyproject.toml README.md ./
COPY parle ./parle
COPY bridge ./bridge
COPY agent ./agent
COPY --from=web /tmp/web/package/dist/livekit-client.umd.js ./bridge/static/vendor/
RUN pip install --no-deps . && rm -rf /app/build

USER parle
# Models: the Hugging Face cache, a volume in deploy/compose.yaml, or baked in below.
ENV HOME=/home/parle \
    HF_HOME=/home/parle/.cache/huggingface \
    PARLE_CACHE_DIR=/home/parle/.cache/parle \
    PARLE_PROFILE=legacy \
    PARLE_HOST=0.0.0.0 \
    PARLE_PORT=8000 \
    PARLE_LLM_LAUNCH=false

# BAKE_MODELS=1 fetches the profile's STT/TTS/classifier weights and the agent's VAD and turn
# detector at build time (the LLM is vLLM's). A token for gated repos comes as a build secret:
# never an ARG, never in a layer.
ARG BAKE_MODELS=0
ARG PARLE_PROFILE=legacy
RUN --mount=type=secret,id=hf_token,uid=10001 \
    if [ "$BAKE_MODELS" = "1" ]; then \
        HF_TOKEN="$(cat /run/secrets/hf_token 2>/dev/null || true)" \
        PARLE_PROFILE="$PARLE_PROFILE" parle models fetch \
        && parle agent download-files; \
    fi

EXPOSE 8000
# /ready is 200 once the engines are loaded and the LLM server answers (the first start with
# an empty cache downloads the weights: a long start period).
HEALTHCHECK --interval=15s --timeout=5s --start-period=900s --retries=3 \
    CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4)"

ENTRYPOINT ["parle"]
CMD ["serve"]
