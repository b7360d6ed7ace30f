# syntax=docker/dockerfile:1.7
# PARLE on a CUDA box: one image for the server (`serve`, the default) and the LiveKit worker
# (`agent start`), and LanguageTool's HTTP server (compose's `languagetool`: its jars and a Java 17
# runtime are in here). vLLM is not: it runs from its own official image (deploy/compose.yaml).
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

# LanguageTool 6.6's jars (~245 MB), pinned in deploy/languagetool/pom.xml and fetched the way
# scripts/languagetool.sh fetches them (the same pom, the same dependency plugin). Only the pom
# comes in, so a code change never refetches them.
FROM maven:3.9.9-eclipse-temurin-17 AS languagetool
WORKDIR /tmp/languagetool
COPY deploy/languagetool/pom.xml ./pom.xml
RUN mvn --batch-mode --quiet -f pom.xml -Dmaven.repo.local=/tmp/m2 \
        org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
        -DoutputDirectory=/opt/languagetool/lib -DincludeScope=runtime \
    && ls /opt/languagetool/lib/languagetool-server-*.jar \
    && rm -rf /tmp/m2

FROM ${CUDA_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/parle \
    PATH=/opt/parle/bin:$PATH

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin parle \
    && python3 -m venv $VIRTUAL_ENV

# LanguageTool's jars before the Python layers: neither a lock nor a code change copies them
# again. PARLE_GRAMMAR_HOME points PARLE at them (a `parle serve` with no LanguageTool at
# PARLE_GRAMMAR_URL launches one on loopback from here); compose runs them as `languagetool`.
COPY --from=languagetool /opt/languagetool/lib /opt/languagetool/lib

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
# LanguageTool's logging at WARN, as PARLE's own launch sets it (at INFO it writes lines for
# every check): the same file, for compose's `languagetool` service.
RUN pip install --no-deps . && rm -rf /app/build \
    && python3 -c "from parle.engines.languagetool import LOGBACK_XML as x; \
        open('/opt/languagetool/logback.xml', 'w', encoding='utf-8').write(x)"

USER parle
# Models: the Hugging Face cache, a volume in deploy/compose.yaml, or baked in below.
ENV HOME=/home/parle \
    HF_HOME=/home/parle/.cache/huggingface \
    PARLE_CACHE_DIR=/home/parle/.cache/parle \
    PARLE_PROFILE=legacy \
    PARLE_HOST=0.0.0.0 \
    PARLE_PORT=8000 \
    PARLE_LLM_LAUNCH=false \
    PARLE_GRAMMAR_HOME=/opt/languagetool/lib

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
