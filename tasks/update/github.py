"""Pull requests and comments through the GitHub REST API; the token comes from the caller (a
Prefect Secret block or the environment) and never appears in a log line or an error."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tasks.errors import BaseImageError
from tasks.http import HttpTransport, Outcome, classify

API_VERSION = "2022-11-28"


class GitHubError(BaseImageError):
    """The GitHub API refused a call; the message names the call and GitHub's message."""


@dataclass(frozen=True)
class PullRequest:
    """A pull request as the migration uses it: its number (comments, the merge) and its page
    (the outcome, the approval form). Read once from GitHub's answer; an answer without a number
    is an error naming the call, not a KeyError later at the merge."""

    number: int
    url: str | None = None

    @classmethod
    def from_json(cls, data: object, call: str) -> PullRequest:
        number = data.get("number") if isinstance(data, dict) else None
        if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
            raise GitHubError(f"{call}: GitHub's answer names no pull request number; got {str(data)[:200]!r}")
        url = data.get("html_url") if isinstance(data, dict) else None
        return cls(number, url if isinstance(url, str) and url else None)

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "html_url": self.url}


@dataclass(frozen=True)
class GitHubRepo:
    owner: str
    name: str
    api_url: str = "https://api.github.com"

    @classmethod
    def parse(cls, text: str, api_url: str = "https://api.github.com") -> GitHubRepo:
        owner, sep, name = text.partition("/")
        if not sep or not owner or not name or "/" in name:
            raise GitHubError(f"GitHub repository {text!r} is not 'owner/name'")
        return cls(owner, name, api_url.rstrip("/"))


class GitHub:
    def __init__(self, repo: GitHubRepo, token: str, transport: HttpTransport | None = None) -> None:
        self.repo = repo
        self._token = token
        self.transport = transport or HttpTransport()

    def __repr__(self) -> str:
        return f"GitHub({self.repo.owner}/{self.repo.name})"

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> tuple[int, Any]:
        url = f"{self.repo.api_url}{path}"
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
        body = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(payload).encode()
        response = self.transport.request(method, url, headers=headers, body=body)
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = response.text[:300]
        if classify(response.status_code) is Outcome.AUTH:
            raise GitHubError(
                f"{method} {url}: GitHub refused the token (HTTP {response.status_code}); check the "
                "Secret block or GITHUB_TOKEN and its repository permissions"
            )
        return response.status_code, data

    def open_pull_request(self, head: str, base: str, title: str, body: str) -> PullRequest:
        """Open the PR, or return the open one for `head` (a second run opens no second PR)."""
        repo = f"/repos/{self.repo.owner}/{self.repo.name}"
        call = f"POST {self.repo.api_url}{repo}/pulls"
        status, data = self._call("POST", f"{repo}/pulls", {"title": title, "head": head, "base": base, "body": body})
        if status == 201:
            return PullRequest.from_json(data, call)
        if status == 422:
            status, existing = self._call("GET", f"{repo}/pulls?head={self.repo.owner}:{head}&state=open")
            if status == 200 and isinstance(existing, list) and existing:
                return PullRequest.from_json(existing[0], f"GET {self.repo.api_url}{repo}/pulls?head={head}")
        message = data.get("message") if isinstance(data, dict) else data
        raise GitHubError(f"{call}: HTTP {status}: {message}")

    def comment(self, number: int, body: str) -> None:
        path = f"/repos/{self.repo.owner}/{self.repo.name}/issues/{number}/comments"
        status, data = self._call("POST", path, {"body": body})
        if status != 201:
            raise GitHubError(f"POST {self.repo.api_url}{path}: HTTP {status}: {data}")

    def merge_pull_request(self, number: int, method: str = "merge") -> str:
        """Merge PR `number`; an already merged PR counts as merged. Returns the merge commit SHA."""
        path = f"/repos/{self.repo.owner}/{self.repo.name}/pulls/{number}/merge"
        status, data = self._call("PUT", path, {"merge_method": method})
        if status == 200:
            return str(data.get("sha", ""))
        if status == 405 and isinstance(data, dict) and "already merged" in str(data.get("message", "")).lower():
            return ""
        message = data.get("message") if isinstance(data, dict) else data
        raise GitHubError(f"PUT {self.repo.api_url}{path}: HTTP {status}: {message}")

    def open_issue(self, title: str, body: str, labels: list[str]) -> dict[str, Any]:
        path = f"/repos/{self.repo.owner}/{self.repo.name}/issues"
        status, data = self._call("POST", path, {"title": title, "body": body, "labels": labels})
        if status != 201:
            message = data.get("message") if isinstance(data, dict) else data
            raise GitHubError(f"POST {self.repo.api_url}{path}: HTTP {status}: {message}")
        return dict(data)
