"""The benchmark's baseline: a raw FastAPI endpoint that only reads and parses the JSON body.

``POST /ingest`` does ``orjson.loads(await request.body())`` and answers ``200 success``; nothing is
stored. ``GET /health`` answers 200. It is served by uvicorn in one process with the settings
triggergate's webhook servers use (``gateway/httpserver.py``): event loop and HTTP parser chosen
by uvicorn (uvloop and httptools when installed), no access log, no lifespan, no websockets, no
proxy headers, no ``Server`` header. SIGTERM/SIGINT stop it (uvicorn's graceful shutdown).

``python bench/baseline_server.py --port 8000``
"""

from __future__ import annotations

import argparse

import orjson
import uvicorn
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.post("/ingest")
async def ingest(request: Request) -> Response:
    """Parses the body (a 400 when it is not JSON) and accepts it without storing anything."""
    try:
        orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        return Response(f"request body is not valid JSON: {exc}", 400, media_type="text/plain")
    return Response(b"success", 200, media_type="text/plain; charset=utf-8")


@app.get("/health")
async def health() -> Response:
    return Response(b"OK", 200, media_type="text/plain; charset=utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the raw FastAPI baseline endpoint with uvicorn.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to bind")
    args = parser.parse_args(argv)
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="warning", log_config=None, access_log=False,
        lifespan="off", ws="none", proxy_headers=False, server_header=False, backlog=2048,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
