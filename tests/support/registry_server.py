"""A real registry (Debian's ``docker-registry``, distribution 2.8) on 127.0.0.1 for tests:
free port, temporary storage, optionally htpasswd basic auth; stopped and removed afterwards."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.seed import Seeded

REGISTRY_BIN = "docker-registry"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalRegistry:
    root: Path
    auth: tuple[str, str] | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    seeded: Seeded | None = None
    access_log: bool = False  # the registry logs every request to `root/registry.log`

    def log_text(self) -> str:
        return (self.root / "registry.log").read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> LocalRegistry:
        binary = shutil.which(REGISTRY_BIN)
        if binary is None:
            raise RuntimeError("docker-registry is not installed: run scripts/test, which installs it")
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        auth_block = ""
        if self.auth:
            import bcrypt

            # The cheapest cost: the registry checks the hash on every request.
            hashed = bcrypt.hashpw(self.auth[1].encode(), bcrypt.gensalt(rounds=4)).decode()
            (self.root / "htpasswd").write_text(f"{self.auth[0]}:{hashed}\n")
            auth_block = f"auth:\n  htpasswd:\n    realm: baseimage-test\n    path: {self.root / 'htpasswd'}\n"
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            f"log:\n  level: {'info' if self.access_log else 'error'}\n  accesslog:\n"
            f"    disabled: {'false' if self.access_log else 'true'}\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
            f"{auth_block}"
        )
        log = (self.root / "registry.log").open("wb")
        self.process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.root / 'registry.log').read_text()[-2000:]}")
            try:
                response = requests.get(f"{self.url}/v2/", timeout=1)
                if response.status_code in (200, 401):
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry on {self.url} did not answer within {timeout} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
