"""A research mirror that needs a login gets it from ~/.netrc (the policy file refuses
credentials in its URLs): baseimage's HTTP client sends it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tasks.http import HttpTransport
from tests.support.http_endpoint import Endpoint, Reply, Request


def _login(request: Request) -> Reply:
    expected = "Basic " + base64.b64encode(b"ci:s3cret-token").decode()
    return Reply(200, b"ok") if request.headers.get("authorization") == expected else Reply(401, b"login")


def test_the_index_login_comes_from_netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login ci password s3cret-token\n")
    netrc.chmod(0o600)
    with Endpoint(_login) as ep:
        monkeypatch.setenv("NETRC", str(tmp_path / "absent"))
        assert HttpTransport().request("GET", f"{ep.url}/whl/cu126/torch/").status_code == 401, "no login: refused"
        monkeypatch.setenv("NETRC", str(netrc))
        assert HttpTransport().request("GET", f"{ep.url}/whl/cu126/torch/").status_code == 200
