"""A real Prometheus Pushgateway (Debian's prometheus-pushgateway) on a free loopback port."""

from __future__ import annotations

import shutil
import subprocess
import time

import requests

from tests.support.registry_server import free_port


class Pushgateway:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> Pushgateway:
        binary = shutil.which("prometheus-pushgateway")
        if binary is None:
            raise RuntimeError("prometheus-pushgateway is not installed: run scripts/test, which installs it")
        self.process = subprocess.Popen(
            [binary, f"--web.listen-address={self.address}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://{self.address}/-/ready", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pushgateway on {self.address} not ready within {timeout} s")

    def metrics(self) -> str:
        return requests.get(f"http://{self.address}/metrics", timeout=5).text

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
