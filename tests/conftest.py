"""Fixtures shared by several test files: a free TCP port, and the demo app served in-process."""
from __future__ import annotations

import socket

import pytest


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    return find_free_port()


@pytest.fixture(scope="session")
def demo_server():
    """The demo app (demo weights, CPU) served on 127.0.0.1 for the whole test session: ``(demo, url)``."""
    from deepfake_lab.app import build_app, launch_options

    demo = build_app(device="cpu")
    port = find_free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, **launch_options())
    try:
        yield demo, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
