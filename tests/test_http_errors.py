"""The neutral HTTP layer (tasks/http.py) and who is talking: the transport's failures are plain
HTTP errors; the registry client says RegistryError, the research sources say SourceError, each
of the same kind (transient, unreachable, protocol) and message, so a PyTorch index or OSV outage
is never reported as a registry problem. Real servers on 127.0.0.1 throughout."""

from __future__ import annotations

import pytest

from tasks.errors import (
    HttpProtocolError,
    HttpTransientError,
    HttpUnreachableError,
    RegistryError,
    RegistryTransientError,
    SourceError,
    SourceProtocolError,
    SourceTransientError,
    SourceUnreachableError,
    recast,
)
from tasks.http import HttpTransport, RetryPolicy
from tasks.registry.session import RegistrySession
from tasks.research import osv
from tasks.research.sources.pytorch_index import PyTorchIndex
from tests.support.http_endpoint import Endpoint, Reply, Request
from tests.support.registry_server import free_port


def quick() -> HttpTransport:
    return HttpTransport(retry=RetryPolicy(attempts=2, backoff=0.0), timeout=(2.0, 2.0), sleep=lambda _s: None)


def unavailable(request: Request) -> Reply:
    return Reply(503, b"down for maintenance")


def test_the_transport_raises_neutral_errors() -> None:
    with Endpoint(unavailable) as ep, pytest.raises(HttpTransientError, match="HTTP 503 after 2 attempts") as caught:
        quick().request("GET", f"{ep.url}/anything")
    assert not isinstance(caught.value, (RegistryError, SourceError))
    with pytest.raises(HttpUnreachableError, match="cannot connect"):
        quick().request("GET", f"http://127.0.0.1:{free_port()}/")


def test_the_pytorch_index_and_osv_speak_as_sources() -> None:
    with Endpoint(unavailable) as ep:
        with pytest.raises(SourceTransientError, match="HTTP 503") as index_error:
            PyTorchIndex(f"{ep.url}/whl", quick()).wheels("cu126", "torch")
        with pytest.raises(SourceTransientError, match="querybatch: HTTP 503"):
            osv.live_advisories([osv.Pin("torch", "2.5.1")], quick(), api=f"{ep.url}/v1")
    assert not isinstance(index_error.value, RegistryError), "an index outage is not a registry problem"
    with pytest.raises(SourceUnreachableError):
        PyTorchIndex(f"http://127.0.0.1:{free_port()}/whl", quick()).wheels("cu126", "torch")

    def not_json(request: Request) -> Reply:
        return Reply(200, b"<html>", {"Content-Type": "application/vnd.pypi.simple.v1+json"})

    with Endpoint(not_json) as ep, pytest.raises(SourceProtocolError, match="not a PEP 691 project page"):
        PyTorchIndex(f"{ep.url}/whl", quick()).wheels("cu126", "torch")


def test_the_registry_speaks_as_the_registry() -> None:
    with Endpoint(unavailable) as ep:
        host = ep.url.removeprefix("http://")
        session = RegistrySession(transport=quick())
        with pytest.raises(RegistryTransientError, match="HTTP 503") as caught:
            session.tags(host, "nvidia/cuda")
    assert isinstance(caught.value, HttpTransientError), "still a transient HTTP error for retry policies"


@pytest.mark.parametrize(
    ("neutral", "family", "expected"),
    [
        (HttpTransientError("x", url="u", status=503), "source", SourceTransientError),
        (HttpUnreachableError("x", url="u"), "source", SourceUnreachableError),
        (HttpProtocolError("x", url="u"), "source", SourceProtocolError),
        (HttpTransientError("x", url="u"), "registry", RegistryTransientError),
    ],
)
def test_recast_keeps_kind_message_and_url(neutral: HttpTransientError, family: str, expected: type) -> None:
    again = recast(neutral, family)
    assert type(again) is expected and str(again) == "x" and again.url == "u" and again.status == neutral.status
    assert recast(again, family) is again, "already the family's own: unchanged"
