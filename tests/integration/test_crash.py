"""kill -9 in the middle of a stream: every event answered 200 is processed after a restart,
and a firing whose outcome was recorded is not carried out again."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.integration.gatewayproc import GatewayProcess, free_port
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.integration

N_EVENTS = 600
SENDERS = 6


def ce(seq: int) -> dict[str, str]:
    """CloudEvents binary mode: a retry of the same upload keeps its identity and is deduplicated."""
    return {"ce-specversion": "1.0", "ce-id": f"upload-{seq}", "ce-source": "crash-test", "ce-type": "upload"}


def manifests(tmp: Path, port: int, receiver_url: str) -> Path:
    path = tmp / "crash.yaml"
    path.write_text(
        f"""
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata: {{name: lims}}
spec:
  webhook:
    upload: {{port: "{port}", endpoint: /upload, method: POST}}
---
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {{name: uploads}}
spec:
  dependencies:
    - {{name: up, eventSourceName: lims, eventName: upload}}
  triggers:
    - template:
        name: notify
        http:
          url: {receiver_url}/fired
          payload:
            - src: {{dependencyName: up, dataKey: body.seq}}
              dest: seq
      retryStrategy: {{steps: 5, duration: 50ms}}
"""
    )
    return path


def test_kill_9_mid_stream_loses_nothing(tmp_path: Path) -> None:
    receiver = Receiver().start()
    port = free_port()
    path = manifests(tmp_path, port, receiver.url)
    state = tmp_path / "state"
    gw = GatewayProcess([path], state, port).start()

    accepted: set[int] = set()
    lock = threading.Lock()
    next_seq = iter(range(N_EVENTS))
    failed: list[int] = []

    def sender() -> None:
        with httpx.Client(timeout=5.0) as client:
            for seq in next_seq:
                try:
                    r = client.post(f"http://127.0.0.1:{port}/upload", json={"seq": seq}, headers=ce(seq))
                except httpx.HTTPError:
                    with lock:
                        failed.append(seq)
                    continue
                with lock:
                    (accepted.add(seq) if r.status_code == 200 else failed.append(seq))

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for t in threads:
        t.start()
    # kill -9 once a good part of the stream has been accepted
    deadline = time.monotonic() + 30
    while len(accepted) < N_EVENTS // 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    gw.kill()
    killed_at = len(accepted)
    for t in threads:
        t.join()
    fired_before_restart = len(receiver.snapshot())
    assert 0 < killed_at < N_EVENTS

    gw2 = GatewayProcess([path], state, port).start()
    try:
        # The senders retry what failed. Some of those were durable before the kill (only the
        # answer was lost): the CloudEvent id makes the retry a duplicate that fires nothing new.
        with httpx.Client(timeout=5.0) as client:
            for seq in failed:
                r = client.post(f"http://127.0.0.1:{port}/upload", json={"seq": seq}, headers=ce(seq))
                assert r.status_code == 200
                accepted.add(seq)
        assert accepted == set(range(N_EVENTS))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seqs = {int(r.json()["seq"]) for r in receiver.snapshot()}
            if seqs >= accepted:
                break
            time.sleep(0.05)
    finally:
        assert gw2.terminate() == 0, gw2.logs()
    received = receiver.snapshot()
    receiver.stop()
    seqs = Counter(int(r.json()["seq"]) for r in received)
    missing = accepted - set(seqs)
    assert not missing, f"{len(missing)} accepted event(s) never fired, e.g. {sorted(missing)[:10]}"
    # Redelivery after the crash is allowed only for firings whose outcome was not yet recorded
    # when the process died: at most the firings that were in flight at that moment.
    keys = Counter(r.headers["idempotency-key"] for r in received)
    repeated = {k: n for k, n in keys.items() if n > 1}
    assert all(n == 2 for n in repeated.values())
    assert len(repeated) <= 256, f"{len(repeated)} firings repeated"
    # One firing per upload: retried uploads were deduplicated by their CloudEvent id, and every
    # repeated delivery carried the same idempotency key, so a receiver can drop it.
    assert len(keys) == len(seqs) == N_EVENTS
    print(
        f"accepted before kill: {killed_at}; fired before restart: {fired_before_restart}; "
        f"repeated after restart (same key): {len(repeated)}"
    )
