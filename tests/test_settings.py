"""The policy file loader: the shipped config loads; bad files name file, line, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from baseimage.settings import load_settings
from tasks.errors import ConfigError
from tasks.registry.auth import Credentials
from tests.conftest import REPO_ROOT

MINIMAL = "images:\n  - name: training\n    dockerfile: Dockerfile\n    track: cuda\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config" / "policy.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_shipped_config_loads_and_points_at_real_files() -> None:
    settings = load_settings(REPO_ROOT / "config" / "policy.yaml")
    assert settings.root == REPO_ROOT
    assert [i.name for i in settings.images] == ["training", "training-ngc", "training-cuda126"]
    for image in settings.images:
        assert settings.path(image.dockerfile).is_file()
        if image.requirements:
            assert settings.path(image.requirements).is_file()
    assert settings.fleet.min_driver == 535
    assert settings.approvals.required_for == ["update", "production"]
    assert set(settings.environments) == {"staging", "production"}


def test_defaults_for_a_minimal_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.root == tmp_path
    assert settings.registries.concurrency == 8 and settings.registries.mirrors == {}
    assert settings.policy.allow_major_upgrade is False


def test_credentials_come_from_the_environment_only(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + "registries:\n  credentials:\n    nvcr.io:\n      username: $oauthtoken\n      password_env: NGC_API_KEY\n"
    )
    settings = load_settings(write(tmp_path, text))
    assert settings.registry_credentials({}) == {}
    assert settings.registry_credentials({"NGC_API_KEY": "k"}) == {"nvcr.io": Credentials("$oauthtoken", "k")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            MINIMAL.replace("track: cuda", "track: cudaa"),
            "{path}:4: images[0].track: 'cudaa' is not allowed; input should be 'cuda' or 'ngc'",
        ),
        (
            MINIMAL + "fleet:\n  min_driver: 99\n",
            "{path}:6: fleet.min_driver: Input should be greater than or equal to 400",
        ),
        (MINIMAL + "fleet:\n  min_drivers: 535\n", "{path}:6: fleet.min_drivers: unknown key"),
        (
            MINIMAL + "registries:\n  mirrors:\n    docker.io: 127.0.0.1:5000\n",
            "{path}:7: registries.mirrors: mirror for docker.io must be an http:// or https:// URL, got '127.0.0.1:5000'",
        ),
        (
            MINIMAL + "approvals:\n  required_for: [update]\n",
            "{path}:6: approvals.required_for: 'production' approval cannot be switched off",
        ),
        (
            MINIMAL + "registries:\n  platform: amd64\n",
            "{path}:6: registries.platform: platform 'amd64' is not 'os/arch[/variant]'",
        ),
        (
            "images:\n  - name: Training\n    dockerfile: D\n    track: cuda\n",
            "{path}:2: images[0].name: String should match pattern '^[a-z0-9][a-z0-9-]*$'",
        ),
        (
            "images:\n  - dockerfile: D\n    track: cuda\n",
            "{path}:2: images[0].name: Field required",
        ),
        ("fleet: {}\n", "{path}:1: images: Field required"),
    ],
)
def test_bad_values_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == "invalid config:\n  " + message.format(path=path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "images: [\n",
            "{path}:2: not valid YAML: expected the node content, but found '<stream end>'",
        ),
        ("- just\n- a list\n", "{path}: expected a mapping with at least 'images:'"),
        ("", "{path}: expected a mapping with at least 'images:'"),
    ],
)
def test_unreadable_files(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(message.format(path=path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"nope.yaml: cannot read config: No such file or directory; pass --config FILE",
    ):
        load_settings(tmp_path / "nope.yaml")
