"""API benchmark: requests/s and p99 latency of `GET /v1/dubs/{id}` (status polls) and `POST /v1/dubs`,
beside a bare FastAPI route served by the same server process in the same run, reported as ratios.

Goal: polls reach at least 50% of the bare route's rate. Loops are bounded and everything stays on
127.0.0.1. It uses the machine's Postgres and Redis (REDUB_* settings; a database of its own, dropped at
the end) and presigns outputs against REDUB_S3_ENDPOINT_URL without contacting it.
The polled dub is a finished one: with the poll cache on (the default) its polls are served from the API
process's exact cache; `--no-poll-cache` measures the database path.
Usage: python -m bench.api [--requests 2000] [--concurrency 16] [--workers 1] [--no-poll-cache]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess  # nosec B404
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[1]
POLL_FLOOR = 0.5
ROUNDS = 3


def bench_app() -> FastAPI:
    """The real application plus one bare route, so both are measured through the same server."""
    from app.main import create_app

    app = create_app()

    @app.get("/bench/bare", include_in_schema=False)
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

    return app


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


class _Connection:
    """A minimal keep-alive HTTP/1.1 client: the load generator must cost far less than the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def _raw_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _run(name: str, port: int, raw: bytes, total: int, concurrency: int) -> Result:
    latencies: list[float] = []
    errors = 0
    remaining = total
    connections = [await _Connection.open(port) for _ in range(concurrency)]

    async def one_client(connection: _Connection) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            status = await connection.request(raw)
            latencies.append(time.perf_counter() - started)
            if status >= 400:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(one_client(connection) for connection in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    ordered = sorted(latencies)
    return Result(
        name=name,
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=1000 * statistics.median(ordered),
        p99_ms=1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        errors=errors,
    )


def _merge(results: list[Result]) -> Result:
    """Rounds of one route, taken together (rates add up over the summed time; latencies are averaged)."""
    return Result(
        name=results[0].name,
        requests=sum(result.requests for result in results),
        seconds=sum(result.seconds for result in results),
        p50_ms=statistics.mean(result.p50_ms for result in results),
        p99_ms=max(result.p99_ms for result in results),
        errors=sum(result.errors for result in results),
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _create_database(admin_url: str) -> tuple[str, str]:
    from sqlalchemy import create_engine, text

    name = f"redub_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return name, admin_url.rsplit("/", 1)[0] + f"/{name}"


def _drop_database(admin_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000, help="Requests per measured route.")
    parser.add_argument("--concurrency", type=int, default=16, help="Concurrent clients.")
    parser.add_argument("--workers", type=int, default=1, help="API server processes.")
    parser.add_argument(
        "--admin-database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument(
        "--no-poll-cache",
        action="store_true",
        help="Serve every poll from the database (REDUB_POLL_CACHE=false), to see the uncached path.",
    )
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    args = parser.parse_args(argv)

    database, database_url = _create_database(args.admin_database_url)
    prefix = f"redub_bench_{uuid.uuid4().hex[:8]}:"
    environment = {
        **os.environ,
        "REDUB_DATABASE_URL": database_url,
        "REDUB_REDIS_KEY_PREFIX": prefix,
        "REDUB_ALLOW_PRIVATE_URLS": "true",
        "REDUB_LOG_LEVEL": "WARNING",
        "REDUB_POLL_CACHE": "false" if args.no_poll_cache else "true",
        "REDUB_S3_ENDPOINT_URL": os.environ.get("REDUB_S3_ENDPOINT_URL", "http://127.0.0.1:8333"),
        "REDUB_S3_ACCESS_KEY_ID": os.environ.get("REDUB_S3_ACCESS_KEY_ID", "bench"),
        "REDUB_S3_SECRET_ACCESS_KEY": os.environ.get("REDUB_S3_SECRET_ACCESS_KEY", "bench"),
    }
    os.environ.update(environment)
    port = _free_port()
    server: subprocess.Popen[bytes] | None = None
    try:
        from app.core.config import get_settings
        from app.core.db import dispose_engines, new_session
        from app.core.migrate import upgrade
        from app.keys.service import create_key

        get_settings.cache_clear()
        upgrade()
        with new_session() as session:
            key = create_key(session, "bench", rate_limit_per_minute=0, max_concurrent_jobs=0).key
            session.commit()
        dispose_engines()
        # sys.executable and a fixed argv, no shell (B603).
        server = subprocess.Popen(  # nosec B603
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.api:bench_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=environment,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the API server did not start")
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {key}"}
        body = {"video_url": "http://127.0.0.1:9/video.mp4", "audio_url": "http://127.0.0.1:9/audio.m4a"}
        dub_id = httpx.post(f"{base}/v1/dubs", json=body, headers=headers).json()["id"]
        _mark_succeeded(uuid.UUID(dub_id))
        results = asyncio.run(_measure(port, headers, body, dub_id, args.requests, args.concurrency))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        _cleanup_redis(prefix)
        from app.core.db import dispose_engines

        dispose_engines()
        _drop_database(args.admin_database_url, database)

    bare = results["bare"]
    report = {
        name: {
            "requests_per_s": round(result.rate, 1),
            "p50_ms": round(result.p50_ms, 2),
            "p99_ms": round(result.p99_ms, 2),
            "errors": result.errors,
            "rate_ratio_to_bare": round(result.rate / bare.rate, 3),
        }
        for name, result in results.items()
    }
    poll_ratio = results["poll"].rate / bare.rate
    if args.json:
        print(json.dumps({"results": report, "poll_floor": POLL_FLOOR, "concurrency": args.concurrency}))
    else:
        print(f"{'route':<8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'vs bare':>10}")
        for name, row in report.items():
            print(
                f"{name:<8}{row['requests_per_s']:>10}{row['p50_ms']:>10}{row['p99_ms']:>10}"
                f"{row['errors']:>8}{row['rate_ratio_to_bare']:>10}"
            )
        verdict = "meets" if poll_ratio >= POLL_FLOOR else "misses"
        print(f"polls reach {poll_ratio:.0%} of the bare route's rate: {verdict} the {POLL_FLOOR:.0%} goal")
    return 0 if poll_ratio >= POLL_FLOOR else 1


async def _measure(
    port: int, headers: dict[str, str], body: dict[str, str], dub_id: str, total: int, concurrency: int
) -> dict[str, Result]:
    payload = json.dumps(body).encode()
    requests = {
        "bare": _raw_request("GET", "/bench/bare", {}),
        "poll": _raw_request("GET", f"/v1/dubs/{dub_id}", headers),
        "create": _raw_request("POST", "/v1/dubs", {**headers, "Content-Type": "application/json"}, payload),
    }
    # Warm-up, then rounds that alternate the routes so background load on a shared machine hits all alike.
    for name in ("bare", "poll"):
        await _run(name, port, requests[name], 100, concurrency)
    rounds: dict[str, list[Result]] = {name: [] for name in requests}
    for _ in range(ROUNDS):
        for name, raw in requests.items():
            count = total // ROUNDS if name != "create" else total // (4 * ROUNDS)
            rounds[name].append(await _run(name, port, raw, count, concurrency))
    return {name: _merge(results) for name, results in rounds.items()}


def _mark_succeeded(dub_id: uuid.UUID) -> None:
    """Polls are measured on a finished dub, so each one also signs a fresh output URL."""
    from app.core.db import new_session
    from app.models import Job

    with new_session() as session:
        job = session.get(Job, dub_id)
        assert job is not None
        job.status = "succeeded"
        job.output_key = f"jobs/{dub_id}/output.mp4"
        job.output_size = 123456
        job.output_duration_s = 10.0
        job.progress_stage, job.progress_percent = "done", 100.0
        session.commit()


def _cleanup_redis(prefix: str) -> None:
    import redis

    from app.core.config import get_settings

    client = redis.Redis.from_url(get_settings().redis_url)
    for name in client.scan_iter(match=f"{prefix}*"):
        client.delete(name)
    client.close()


if __name__ == "__main__":
    sys.exit(main())
