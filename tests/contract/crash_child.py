"""Child process of the crash test: publish concurrently, report, then die by SIGKILL.

Usage: ``python crash_child.py '<json config>'`` with ``kind``, ``state_dir``, ``options``,
``publishers`` and ``kill_after``. Each publisher task publishes batches of 3 events; after a
``publish()`` returns, the child writes the ids of that batch to stdout (one ``os.write``, no
buffering). After ``kill_after`` publishes have returned it sends itself SIGKILL, while the other
publishers still have writes in flight: no ``close()``, no flush, no atexit.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.bus import create_bus
from sensors.event import Event


async def main(cfg: dict[str, Any]) -> None:
    bus = create_bus(cfg["kind"], Path(cfg["state_dir"]), **cfg["options"])
    await bus.start()
    returned = 0

    async def publisher(p: int) -> None:
        nonlocal returned
        i = 0
        while True:
            batch = [
                Event(
                    id=f"crash-{p}-{i}-{j}",
                    source="crash",
                    subject="test",
                    type="webhook",
                    time=datetime.now(UTC),
                    data={"pad": "x" * 200},
                )
                for j in range(3)
            ]
            await bus.publish(batch)
            os.write(1, "".join(f"{event.id}\n" for event in batch).encode())
            returned += 1
            if returned >= cfg["kill_after"]:
                os.kill(os.getpid(), signal.SIGKILL)
            i += 1

    await asyncio.gather(*(publisher(p) for p in range(cfg["publishers"])))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
