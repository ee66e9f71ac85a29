#!/usr/bin/env bash
# The compose stack from nothing to a dubbed video and back to nothing: build, start, create a key, upload the
# bundled sample, dub it with a webhook to a receiver on this host, poll, download the output, check it is an
# MP4 with video and audio, check the webhook's signature, then remove the containers and volumes. Each step is
# checked here: Docker Compose v2 exits 0 even when a build fails or `--wait` finds an unhealthy container.
#   deploy/smoke.sh                      (or `make smoke`)
# Settings (environment): SMOKE_COMPOSE_FILES (default docker-compose.yml:docker-compose.cpu.yml:
# docker-compose.dev.yml; the dev file lets the stack post the webhook to this host), SMOKE_EXTRA_COMPOSE_FILES
# (appended, e.g. a file with local build arguments or CPU limits), SMOKE_MODEL (default: the server's default
# model; `passthrough` only swaps the audio), SMOKE_TIMEOUT_S (the dub's deadline, default 1800).
# Secrets are generated for this run; a .env in the checkout is not read. Images stay (a rerun reuses them).
set -euo pipefail

cd "$(dirname "$0")/.."
# The classic builder: Compose otherwise builds through the daemon's BuildKit, which does not reuse what the
# classic builder (deploy/local-images.sh, `docker build --cpu-quota`) has cached.
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}
PROJECT=redub-smoke
FILES=${SMOKE_COMPOSE_FILES:-docker-compose.yml:docker-compose.cpu.yml:docker-compose.dev.yml}
[[ -n ${SMOKE_EXTRA_COMPOSE_FILES:-} ]] && FILES=$FILES:$SMOKE_EXTRA_COMPOSE_FILES
TIMEOUT_S=${SMOKE_TIMEOUT_S:-1800}
WORK=$(mktemp -d)
START=$(date +%s)
STEP_START=$START

step() {
    local now
    now=$(date +%s)
    echo "[$((now - START))s, previous step $((now - STEP_START))s] $*"
    STEP_START=$now
}
fail() {
    echo "SMOKE FAILED: $*" >&2
    exit 1
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

API_PORT=$(free_port)
S3_PORT=$(free_port)
HOOK_PORT=$(free_port)
API=http://localhost:$API_PORT
secret() { python3 -c 'import secrets; print(secrets.token_hex(32))'; }
cat >"$WORK/env" <<ENV
COMPOSE_FILE=$FILES
POSTGRES_PASSWORD=$(secret)@/:%
S3_ACCESS_KEY_ID=$(secret)
S3_SECRET_ACCESS_KEY=$(secret)
REDUB_KEY_HASH_SECRET=$(secret)
REDUB_STORAGE_SIGNING_SECRET=$(secret)
REDUB_METRICS_TOKEN=$(secret)
GRAFANA_ADMIN_PASSWORD=$(secret)
REDUB_API_PORT=$API_PORT
REDUB_S3_PORT=$S3_PORT
REDUB_PUBLIC_BASE_URL=$API
REDUB_S3_PUBLIC_ENDPOINT_URL=http://localhost:$S3_PORT
ENV
compose() { docker compose --project-name "$PROJECT" --env-file "$WORK/env" "$@"; }

RECEIVER_PID=
teardown() {
    local status=$?
    if [[ $status != 0 ]]; then
        compose ps --all >&2 || true
        compose logs --no-color --tail 60 >&2 || true
    fi
    [[ -n $RECEIVER_PID ]] && kill "$RECEIVER_PID" 2>/dev/null
    compose down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1 || true
    if [[ -n $(docker ps --all --quiet --filter "label=com.docker.compose.project=$PROJECT") ]] \
        || [[ -n $(docker volume ls --quiet --filter "label=com.docker.compose.project=$PROJECT") ]]; then
        echo "SMOKE: containers or volumes of $PROJECT are left" >&2
        status=1
    fi
    rm -rf "$WORK"
    echo "[$(($(date +%s) - START))s] torn down; exit $status"
    exit $status
}
trap teardown EXIT

step "compose files: $FILES"
compose down --volumes --remove-orphans >/dev/null 2>&1 || true

step "build"
compose build 2>&1 | tee "$WORK/build.log" | grep -E '^(Step|Successfully|ERROR|error)' | tail -n 5 || true
for image in $(compose config --images); do
    docker image inspect "$image" >/dev/null 2>&1 || fail "image $image was not built (see the build log above)"
done
grep -qiE '^(ERROR|error:)|returned a non-zero code' "$WORK/build.log" && fail "the build log reports an error"

step "up (waits for health checks)"
compose up --detach --wait --wait-timeout 600 2>&1 | tail -n 3 || true
# Each service's own state, not compose's exit status.
migrate=$(docker inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$(compose ps --all --quiet migrate)")
[[ $migrate == "exited 0" ]] || fail "migrate: $migrate"
for service in postgres redis api worker-cpu; do
    health=$(docker inspect --format '{{.State.Health.Status}}' "$(compose ps --quiet "$service")")
    [[ $health == healthy ]] || fail "$service is $health"
done
for service in s3 worker-gpu; do
    state=$(docker inspect --format '{{.State.Status}} restarts={{.RestartCount}}' "$(compose ps --quiet "$service")")
    [[ $state == "running restarts=0" ]] || fail "$service: $state"
done
curl -fsS "$API/healthz" >/dev/null || fail "the API does not answer on $API"

step "key"
compose exec -T api redub keys create smoke --json >"$WORK/key.json"
KEY=$(json '["key"]' <"$WORK/key.json")
WEBHOOK_SECRET=$(json '["webhook_secret"]' <"$WORK/key.json")
auth=(-H "Authorization: Bearer $KEY")
echo "models: $(curl -fsS "${auth[@]}" "$API/v1/models" | head -c 400)"

step "webhook receiver on port $HOOK_PORT"
# Every POST: its headers and body as one JSON line.
python3 - "$HOOK_PORT" "$WORK/events.jsonl" <<'PYTHON' &
import http.server, json, sys

port, path = int(sys.argv[1]), sys.argv[2]

class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        with open(path, "a") as events:
            events.write(json.dumps({"headers": dict(self.headers), "body": body}) + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass

http.server.ThreadingHTTPServer(("0.0.0.0", port), Receiver).serve_forever()
PYTHON
RECEIVER_PID=$!

step "upload the sample"
upload() { curl -fsS "${auth[@]}" -F "file=@$1" "$API/v1/files" | json '["id"]'; }
VIDEO=$(upload samples/speaker.mp4)
AUDIO=$(upload samples/dub_speech.m4a)

step "dub"
body=$(python3 -c 'import json, sys
body = {"video_file_id": sys.argv[1], "audio_file_id": sys.argv[2],
        "webhook_url": sys.argv[3], "metadata": {"run": "smoke"}}
if sys.argv[4]:
    body["model"] = sys.argv[4]
print(json.dumps(body))' "$VIDEO" "$AUDIO" "http://host.docker.internal:$HOOK_PORT/hook" "${SMOKE_MODEL:-}")
DUB=$(curl -fsS "${auth[@]}" -H "Content-Type: application/json" -d "$body" "$API/v1/dubs" | json '["id"]')
echo "dub $DUB"
deadline=$(($(date +%s) + TIMEOUT_S))
while :; do
    curl -fsS "${auth[@]}" "$API/v1/dubs/$DUB" >"$WORK/dub.json"
    status=$(json '["status"]' <"$WORK/dub.json")
    case $status in
    succeeded) break ;;
    failed | canceled) fail "the dub ended $status: $(json '.get("error")' <"$WORK/dub.json")" ;;
    esac
    (($(date +%s) < deadline)) || fail "the dub is still $status after ${TIMEOUT_S}s"
    sleep 3
done
echo "model $(json '["model"]' <"$WORK/dub.json"), timing $(json '["timing"]' <"$WORK/dub.json")"

step "download and check the output"
curl -fsSL "${auth[@]}" "$API/v1/dubs/$DUB/output" -o "$WORK/dubbed.mp4"
# Checked with the worker image's PyAV, so this host needs no ffmpeg.
worker=$(compose ps --quiet worker-gpu)
docker cp "$WORK/dubbed.mp4" "$worker:/tmp/smoke-dubbed.mp4"
docker exec "$worker" python -c '
import av
with av.open("/tmp/smoke-dubbed.mp4") as container:
    assert "mp4" in container.format.name, container.format.name
    kinds = {stream.type for stream in container.streams}
    assert kinds >= {"video", "audio"}, kinds
    frames = sum(1 for _ in container.decode(video=0))
    assert frames > 0
    print(f"MP4, {container.duration / 1e6:.2f} s, {frames} video frames, streams {sorted(kinds)}")
' || fail "the output is not an MP4 with video and audio"

step "webhook"
for _ in $(seq 1 30); do
    grep -q '"dub.succeeded' "$WORK/events.jsonl" 2>/dev/null && break
    sleep 2
done
python3 - "$WORK/events.jsonl" "$WEBHOOK_SECRET" "$DUB" <<'PYTHON' || fail "no valid dub.succeeded webhook"
import base64, hashlib, hmac, json, sys

path, secret, dub = sys.argv[1:]
key = base64.b64decode(secret.removeprefix("whsec_"))
succeeded = []
for line in open(path):
    event = json.loads(line)
    headers = {name.lower(): value for name, value in event["headers"].items()}
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{event['body']}".encode()
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert expected in headers["webhook-signature"].split(), "bad signature"
    body = json.loads(event["body"])
    print(f"event {body['type']} id {headers['webhook-id']}, signature valid")
    if body["type"] == "dub.succeeded" and body["data"]["id"] == dub:
        succeeded.append(body)
assert len(succeeded) == 1, succeeded
PYTHON

step "SMOKE PASSED: the stack ran a dub end to end"
