"""A small candidate image for the docker tier: a seeded NVIDIA-like base (busybox plus NVIDIA's
entrypoint and banner) serving the training service's HTTP contract from a shell CGI under
busybox httpd, with a real ONNX model. Build args choose a failure to inject (MODE).

It stands in for the real training image, which needs CUDA, PyTorch and a pulled base image
that CI cannot have; the real service itself is tested in-process (tests/services).
"""

from __future__ import annotations

from pathlib import Path

HANDLER = r"""#!/bin/sh
# The training service API (GET /health, POST /train, GET /jobs/ID, GET /models/ID.onnx), stubbed.
jobs=/tmp/jobs
mkdir -p "$jobs"
respond() { printf 'Status: %s\r\nContent-Type: %s\r\n\r\n' "$1" "$2"; }
[ -n "$CONTENT_LENGTH" ] && head -c "$CONTENT_LENGTH" > /dev/null
case "$REQUEST_METHOD $PATH_INFO" in
  "GET /health")
    if [ "$MODE" = health-fail ]; then
      respond "503 Service Unavailable" application/json; echo '{"status":"degraded","broker":false}'; exit 0
    fi
    respond "200 OK" application/json
    echo '{"status":"ok","broker":true,"torch":"stub","cuda":null,"cudnn":null,"cupy":null,"onnxruntime":null,"gpu_usable":false}';;
  "POST /train")
    id=$(cat /proc/sys/kernel/random/uuid)
    if [ "$MODE" = train-fail ]; then
      echo '{"job_id":"'"$id"'","state":"FAILURE","error":"RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"}' > "$jobs/$id"
    else
      echo '{"job_id":"'"$id"'","state":"SUCCESS","model_url":"/models/'"$id"'.onnx","result":{"ok":true,"device":"cpu","training":{"loss_first":2.3,"loss_last":0.4},"gpu_utilization":{"available":false,"problem":"stub service"}}}' > "$jobs/$id"
    fi
    respond "202 Accepted" application/json; echo '{"job_id":"'"$id"'","status_url":"/jobs/'"$id"'"}';;
  "GET /jobs/"*)
    id=${PATH_INFO#/jobs/}
    if [ -f "$jobs/$id" ]; then respond "200 OK" application/json; cat "$jobs/$id"
    else respond "404 Not Found" application/json; echo '{"detail":"no job"}'; fi;;
  "GET /metrics")
    up=$(( $(date +%s) - $(cat /tmp/started 2>/dev/null || date +%s) ))
    bad=0
    if [ "$MODE" = rate-drop ] && [ "$up" -ge "${FAULT_AFTER:-2}" ]; then bad=$(( up * 5 )); fi
    respond "200 OK" "text/plain; version=0.0.4"
    printf 'training_tasks_total{outcome="success"} %d\ntraining_tasks_total{outcome="failure"} %d\n' $(( 10 + up )) "$bad"
    printf 'training_gpu_util_peak_percent 0\n';;
  "GET /models/"*)
    respond "200 OK" application/octet-stream; cat /srv/model.onnx;;
  *)
    respond "404 Not Found" text/plain; echo "no route: $REQUEST_METHOD $PATH_INFO";;
esac
"""

SERVE = """#!/bin/sh
# FAULT (a MODE) applies only on the base whose CUDA_VERSION is FAULT_ON: a fault that arrives
# with the new base image, set at run time (compose environment) so one image serves both.
if [ -n "$FAULT" ] && [ "$CUDA_VERSION" = "$FAULT_ON" ]; then MODE=$FAULT; export MODE; fi
date +%s > /tmp/started
if [ "$MODE" = crash ]; then echo "stub service: crashing on purpose" >&2; exit 3; fi
if [ "$MODE" = oom-mid ]; then
  (sleep "${FAULT_AFTER:-2}"; echo "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB") &
fi
echo "stub training service on 127.0.0.1:$PORT (CUDA $CUDA_VERSION, mode $MODE)"
exec httpd -f -p "127.0.0.1:$PORT" -h /www
"""

DOCKERFILE = """ARG BASE
FROM ${BASE}
ARG PORT=18080
ARG MODE=ok
ENV PORT=${PORT} MODE=${MODE}
RUN /bin/busybox --install -s /bin
COPY serve.sh /srv/serve.sh
COPY handler.sh /www/cgi-bin/svc
COPY model.onnx /srv/model.onnx
RUN chmod 755 /srv/serve.sh /www/cgi-bin/svc
CMD ["/srv/serve.sh"]
"""

BROKEN = """ARG BASE
FROM ${BASE}
RUN echo "compiling the service" && false
"""


def write_context(directory: Path, model_onnx: Path) -> Path:
    """Write the build context; `Dockerfile` builds, `Dockerfile.broken` fails at its RUN."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    (directory / "Dockerfile.broken").write_text(BROKEN)
    (directory / "serve.sh").write_text(SERVE)
    (directory / "handler.sh").write_text(HANDLER)
    (directory / "model.onnx").write_bytes(model_onnx.read_bytes())
    return directory


COMPOSE = """# The stub training service as one compose service on the host network.
services:
  api:
    image: ${TRAINING_IMAGE:?set TRAINING_IMAGE}
    network_mode: host
    environment:
      PORT: "${PORT:?set PORT}"
      FAULT: "${FAULT:-}"
      FAULT_ON: "${FAULT_ON:-}"
      FAULT_AFTER: "${FAULT_AFTER:-2}"
    restart: unless-stopped
    labels:
      baseimage.test: "1"
"""


def write_service_repo(root: Path, model_onnx: Path, base: str) -> Path:
    """A repository laid out like this one, whose managed image is the stub service on `base`:
    ``dockerfiles/svc/`` (built from the repository root) and ``deployments/compose/svc.yaml``."""
    svc = root / "dockerfiles" / "svc"
    svc.mkdir(parents=True, exist_ok=True)
    dockerfile = DOCKERFILE.replace("ARG BASE\nFROM ${BASE}\n", f"FROM {base}\n")
    for name in ("serve.sh", "handler.sh", "model.onnx"):
        dockerfile = dockerfile.replace(f"COPY {name} ", f"COPY dockerfiles/svc/{name} ")
    (svc / "Dockerfile").write_text(dockerfile)
    (svc / "serve.sh").write_text(SERVE)
    (svc / "handler.sh").write_text(HANDLER)
    (svc / "model.onnx").write_bytes(model_onnx.read_bytes())
    compose = root / "deployments" / "compose"
    compose.mkdir(parents=True, exist_ok=True)
    (compose / "svc.yaml").write_text(COMPOSE)
    return root
