"""Pull requests against a local endpoint that checks method, path, headers and body; the branch
pushed to a local bare repository as the remote."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tasks.update import git
from tasks.update.github import GitHub, GitHubError, GitHubRepo, PullRequest
from tests.support.http_endpoint import Endpoint, Reply, Request

TOKEN = "ghp_not-a-real-token-0123456789"


def expect_headers(req: Request) -> None:
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["accept"] == "application/vnd.github+json"
    assert req.headers["x-github-api-version"] == "2022-11-28"


def test_open_pull_request_sends_what_github_expects() -> None:
    def handle(req: Request) -> Reply:
        expect_headers(req)
        assert (req.method, req.path) == ("POST", "/repos/acme/training/pulls")
        assert req.headers["content-type"] == "application/json"
        assert json.loads(req.body) == {
            "title": "Migrate to CUDA 12.9.1",
            "head": "baseimage/cuda-12.9.1",
            "base": "main",
            "body": "plan",
        }
        return Reply(201, json.dumps({"number": 7, "html_url": "https://github.com/acme/training/pull/7"}).encode())

    with Endpoint(handle) as ep:
        github = GitHub(GitHubRepo.parse("acme/training", ep.url), TOKEN)
        pr = github.open_pull_request("baseimage/cuda-12.9.1", "main", "Migrate to CUDA 12.9.1", "plan")
    assert pr == PullRequest(7, "https://github.com/acme/training/pull/7")
    assert TOKEN not in repr(github)


def test_existing_pull_request_is_reused() -> None:
    def handle(req: Request) -> Reply:
        expect_headers(req)
        if req.method == "POST":
            return Reply(
                422, b'{"message": "Validation Failed", "errors": [{"message": "A pull request already exists"}]}'
            )
        assert req.path == "/repos/acme/training/pulls"
        assert req.query == {"head": ["acme:baseimage/cuda-12.9.1"], "state": ["open"]}
        return Reply(200, json.dumps([{"number": 3}]).encode())

    with Endpoint(handle) as ep:
        pr = GitHub(GitHubRepo.parse("acme/training", ep.url), TOKEN).open_pull_request(
            "baseimage/cuda-12.9.1", "main", "t", "b"
        )
    assert pr == PullRequest(3, None)


@pytest.mark.parametrize("answer", [b"{}", b'{"number": "7"}', b'{"number": true}', b"[]", b'"created"'])
def test_an_answer_without_a_pull_request_number_is_an_error_naming_the_call(answer: bytes) -> None:
    with Endpoint(lambda req: Reply(201, answer)) as ep, pytest.raises(GitHubError) as info:
        GitHub(GitHubRepo.parse("acme/training", ep.url), TOKEN).open_pull_request("b", "main", "t", "x")
    assert f"POST {ep.url}/repos/acme/training/pulls: GitHub's answer names no pull request number" in str(info.value)


def test_refused_token_is_a_clear_error_without_the_token() -> None:
    with Endpoint(lambda req: Reply(401, b'{"message": "Bad credentials"}')) as ep, pytest.raises(GitHubError) as info:
        GitHub(GitHubRepo.parse("acme/training", ep.url), TOKEN).comment(3, "rejected by alice")
    assert "GitHub refused the token (HTTP 401)" in str(info.value) and TOKEN not in str(info.value)


def test_comment() -> None:
    def handle(req: Request) -> Reply:
        expect_headers(req)
        assert (req.method, req.path, json.loads(req.body)) == (
            "POST",
            "/repos/acme/training/issues/3/comments",
            {"body": "rejected by alice: not now"},
        )
        return Reply(201, b"{}")

    with Endpoint(handle) as ep:
        GitHub(GitHubRepo.parse("acme/training", ep.url), TOKEN).comment(3, "rejected by alice: not now")


@pytest.mark.parametrize("text", ["acme", "acme/", "/x", "a/b/c"])
def test_bad_repository_names(text: str) -> None:
    with pytest.raises(GitHubError, match="is not 'owner/name'"):
        GitHubRepo.parse(text)


def test_branch_is_pushed_to_a_bare_remote(tmp_path: Path) -> None:
    remote, work = tmp_path / "remote.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "f").write_text("x\n")
    git.git(work, "add", "f")
    git.git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    git.git(work, "remote", "add", "origin", str(remote))
    git.git(work, "branch", "baseimage/cuda-12.9.1")
    git.push(work, "origin", "baseimage/cuda-12.9.1")
    assert git.git(remote, "rev-parse", "baseimage/cuda-12.9.1").strip() == git.head(work)
