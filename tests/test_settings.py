"""The policy file loader: the shipped config loads; bad files name file, line, key and fix."""

from __future__ import annotations

import os
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


# ---------------------------------------------------------------- hostile files (issue 16)


def test_deep_nesting_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "fleet: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == f"{path}:5: not valid YAML: nested deeper than 50 levels"


def test_deep_block_nesting_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "".join(" " * i + f"k{i}:\n" for i in range(200)))
    with pytest.raises(ConfigError, match="nested deeper than 50 levels"):
        load_settings(path)


def test_non_utf8_names_the_file_and_byte_offset(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    path.write_bytes(MINIMAL.encode() + "# café\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    offset = len(MINIMAL) + len("# caf")
    assert str(info.value) == (
        f"{path}: not UTF-8 text: byte 0xe9 at offset {offset} cannot be decoded; save the file as UTF-8"
    )


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_settings(path).images[0].name == "training"


@pytest.mark.timeout(20)
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"policy.yaml: cannot read config: not a regular file; pass --config FILE"):
        load_settings(fifo)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config: it is a directory"):
        load_settings(tmp_path)


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "#" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match="config is larger than 1024 KiB"):
        load_settings(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
            "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
            "{path}:1: not valid YAML: more than 100000 values once aliases are expanded",
        ),
        ("images: &a [*a]\n", "{path}:1: not valid YAML: an alias refers to itself"),
        (MINIMAL + "fleet: 2024-02-30\n", "{path}: not valid YAML: ValueError: day is out of range for month"),
        (MINIMAL + "fleet: " + "9" * 5000 + "\n", "{path}: not valid YAML: ValueError: Exceeds the limit"),
        ("? [a]\n: b\n", "{path}:1: not valid YAML: found unhashable key"),
        ("{1: 2}\n", "invalid config:\n  {path}:1: images: Field required\n  {path}:1: [1]: Keys should be strings"),
    ],
)
def test_hostile_yaml_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(message.format(path=path))


# ---------------------------------------------------------------- credentials per host (issue 11)


def test_token_realms_and_mirror_credentials_load(tmp_path: Path) -> None:
    text = MINIMAL + (
        "registries:\n  mirrors:\n    docker.io: https://mirror.example:5000\n"
        "  credentials:\n    mirror.example:5000:\n      username: m\n      password_env: MIRROR_PASSWORD\n"
        "  token_realms: [auth.example.com, 'https://login.example:8443']\n"
    )
    settings = load_settings(write(tmp_path, text))
    assert settings.registries.token_realms == ["auth.example.com", "https://login.example:8443"]
    assert settings.registry_credentials({"MIRROR_PASSWORD": "p"}) == {"mirror.example:5000": Credentials("m", "p")}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "  token_realms: ['ftp://auth.example']\n",
            "token realm 'ftp://auth.example' is not host[:port] or an http(s) URL",
        ),
        ("  token_realms: ['auth example']\n", "token realm 'auth example' is not host[:port] or an http(s) URL"),
        (
            "  credentials:\n    https://mirror.example:\n      username: u\n      password_env: P\n",
            "credentials are keyed by host[:port] (e.g. nvcr.io, 127.0.0.1:5000), got 'https://mirror.example'",
        ),
        (
            "  mirrors:\n    docker.io: https://u:p@mirror.example\n",
            "mirror for docker.io: put no credentials in the URL; use registries.credentials.mirror.example",
        ),
        ("  mirrors:\n    docker.io: http://\n", "mirror for docker.io: 'http://' has no host"),
    ],
)
def test_bad_registry_hosts(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, MINIMAL + "registries:\n" + extra))
    assert message in str(info.value)


def test_an_unquoted_python_version_says_to_quote_it(tmp_path: Path) -> None:
    config = tmp_path / "policy.yaml"
    config.write_text("images:\n  - {name: t, dockerfile: Dockerfile, track: cuda, python: 3.10}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert f"{config}:2: images[0].python: Input should be a valid string; YAML read 3.1 as a number" in str(info.value)
    assert 'put the value in quotes, e.g. "3.10"' in str(info.value)


@pytest.mark.parametrize("field", ["pytorch_index", "nvidia_support_url"])
def test_a_research_url_never_carries_credentials(tmp_path: Path, field: str) -> None:
    """Regression: `research.pytorch_index: https://ci:TOKEN@mirror/whl` was accepted, and a
    migration moved the requirements file's PyTorch index onto that base: the token would be
    written into a committed requirements file (and the review report). Mirrors already refused
    it; the research URLs say the same, and where credentials go instead."""
    config = write(tmp_path, MINIMAL + f"research:\n  {field}: https://ci:s3cret-token@mirror.example/whl\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    message = str(info.value)
    assert f"research.{field}" in message and "put no credentials in the URL" in message
    assert "~/.netrc" in message and "s3cret-token" not in message, "the error never repeats the secret"


def test_a_flow_parameter_pytorch_index_with_credentials_is_refused(tmp_path: Path) -> None:
    """A deployment's or the UI's pytorch_index parameter goes through the same rule."""
    from baseimage.wiring import research_sources

    settings = load_settings(write(tmp_path, MINIMAL))
    with pytest.raises(ConfigError) as info:
        research_sources(settings, "https://ci:s3cret-token@mirror.example/whl")
    assert "pytorch_index: put no credentials in the URL" in str(info.value)
    assert "s3cret-token" not in str(info.value)
    assert research_sources(settings, "https://mirror.example/whl")[1] == "https://mirror.example/whl"
