"""Waiting for a `ganedit ui` server under test to answer HTTP."""

import time
import urllib.request


def wait_until_serving(port: int, timeout: float = 60) -> None:
    """Until the server on 127.0.0.1:`port` answers (its socket listens before uvicorn runs)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
