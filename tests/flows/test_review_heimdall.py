"""`baseimage review` on a copy of a repository shaped like the user's (tests/fixtures/heimdall:
three images, a FROM through an ARG, an NGC image, a policy document written by hand). Its
document has no findings section: the review completes, says what to add, and leaves the document
byte for byte as it was. With a `## Review Findings` heading added, the findings land under it and
nowhere else: the whole document is compared with a golden file (today's date and the snapshot's
recording time normalised), and a second review leaves it as the first did.

Regenerate the golden file after a deliberate change with BASEIMAGE_REGENERATE_GOLDEN=1."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from baseimage.cli import main
from tests.conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "heimdall"
GOLDEN = REPO_ROOT / "tests" / "fixtures" / "golden" / "heimdall-policy-after-review.md"


def normalised(text: str) -> str:
    """The document without what changes by the day: today's date (not where it is a facts file's
    ``as_of``), the snapshot's recording time, and the findings that bundled facts are older than
    two quarters (tests/research/test_sources.py checks those), which appear as the suite ages."""
    today = datetime.now(UTC).date().isoformat()
    text = re.sub(rf"(?<!as of )(?<! to ){today}", "<today>", text)
    text = re.sub(r"(?m)^- the bundled facts in config/data/\S+ are \d+ days old .*\n", "", text)
    return re.sub(r"\(recorded [^;)]*", "(recorded <when>", text)


def review(config: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object], str]:
    code = main(["review", "--config", str(config), "--sources", "offline", "--no-banner", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_review_of_the_users_repository_places_findings_only_where_asked(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Path(shutil.copytree(FIXTURE, tmp_path / "heimdall"))
    config = repo / "config" / "policy.yaml"
    doc = repo / "docs" / "base-image-policy.md"
    original = doc.read_bytes()

    code, report, err = review(config, tmp_path / "reports", capsys)
    assert code == 10, err  # migration recommended: 12.6.0 is past NVIDIA's support
    missing = f"{doc}: no findings section found; add a '## Review Findings' section"
    assert any(str(w).startswith(missing) for w in report["warnings"]), report["warnings"]  # type: ignore[attr-defined]
    assert doc.read_bytes() == original, "a document with no place for the findings is left as it is"
    images = {i["image"]: i for i in report["images"]}  # type: ignore[attr-defined]
    assert sorted(images) == ["training", "training-cuda126", "training-ngc"]
    assert images["training"]["target"] == "nvidia/cuda:12.9.1-runtime-ubuntu22.04"
    assert images["training-cuda126"]["target"] == "nvidia/cuda:12.6.3-runtime-ubuntu22.04"

    doc.write_text(
        original.decode().replace(
            "## Changelog", "## Review Findings\n\nWhat the last quarterly review found.\n\n## Changelog", 1
        )
    )
    assert review(config, tmp_path / "reports", capsys)[0] == 10
    after = doc.read_text()
    assert "/work/" not in after and str(REPO_ROOT) not in after, "no path of this machine in the user's document"
    if os.environ.get("BASEIMAGE_REGENERATE_GOLDEN") == "1":
        GOLDEN.write_text(normalised(after))
    assert normalised(after) == GOLDEN.read_text()

    assert review(config, tmp_path / "reports", capsys)[0] == 10
    assert doc.read_text() == after, "a second review rewrites the findings in place, nothing more"
