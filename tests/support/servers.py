"""Servers started by the tests: free ports, waiting for HTTP, stopping them, and checking that they
listen on loopback only."""

from __future__ import annotations

import time

import pytest


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket listening in process ``pid`` and its descendants."""
    import psutil

    root = psutil.Process(pid)
    found = set()
    for process in [root, *root.children(recursive=True)]:
        try:
            connections = process.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found |= {(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN}
    return found


def assert_loopback_only(pid: int) -> set[tuple[str, int]]:
    """The server (with its workers and helper processes) listens, and only on loopback."""
    import ipaddress

    def loopback(address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return (
            getattr(ip, "ipv4_mapped", None) or ip
        ).is_loopback  # a JVM reports ::ffff:127.0.0.1

    addresses = listening_addresses(pid)
    assert addresses, f"process {pid} listens on no TCP port"
    assert all(loopback(ip) for ip, _ in addresses), (
        f"listening beyond loopback: {sorted(addresses)}"
    )
    return addresses


def wait_for_http(url: str, server, seconds: float = 120) -> None:
    """Poll `url` until it answers 2xx; fail if the server process exits or time runs out."""
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server behind {url} exited"
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {seconds:.0f} s")


def stop_server(process) -> None:
    """Stop a server started with start_new_session=True, its children included."""
    import os
    import signal
    import subprocess

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
