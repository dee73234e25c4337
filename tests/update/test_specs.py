"""Version specifiers and index URLs as a plan moves them: tables of the rules, and properties
(a moved range always admits the chosen version; one that already does is left as written)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tasks.update.specs import SpecifierError, admit, pin_or_range, url_variant, variant_of, with_variant


@pytest.mark.parametrize(
    ("spec", "version", "moved"),
    [
        (">=13.0,<13.4", "13.6.0", ">=13.0,<13.7"),  # the upper bound, at its own precision
        (">= 13.0, < 13.4", "13.6.0", ">= 13.0, < 13.7"),  # spacing kept
        ("<2.9", "2.13.0", "<2.14"),
        ("<3", "3.1.0", "<4"),
        ("<2.8.0", "2.8.0", "<2.8.1"),
        ("<=2.5", "2.8.0", "<=2.8.0"),
        (">=1.27", "1.26.0", ">=1.26.0"),  # a lower choice lowers the floor
        (">1.20", "1.20.0", ">=1.20.0"),
        ("==2.5.*", "2.8.0", "==2.8.*"),
        ("~=13.0.0", "13.6.0", "~=13.6.0"),
        ("<14,>=13.0", "14.2.0", "<15,>=13.0"),  # clause order kept
    ],
)
def test_a_range_moves_only_as_far_as_needed(spec: str, version: str, moved: str) -> None:
    result = admit(spec, version)
    assert (result.text, result.changed) == (moved, True)
    assert SpecifierSet(result.text.replace(" ", "")).contains(version)


@pytest.mark.parametrize(
    ("spec", "version"),
    [(">=1.26,<2.2", "1.26.4"), ("~=2.5", "2.13.0"), (">=13.0", "14.2.0"), ("!=2.6.0", "2.8.0")],
)
def test_a_range_that_admits_the_choice_is_kept_as_written(spec: str, version: str) -> None:
    assert admit(spec, version).text == spec
    assert not admit(spec, version).changed


def test_a_pin_that_excludes_the_choice_is_refused_not_dropped() -> None:
    with pytest.raises(SpecifierError, match=r"excludes 2\.8\.0"):
        admit(">=2.5,!=2.8.0", "2.8.0")


@pytest.mark.parametrize(
    ("spec", "version", "variant", "expected"),
    [
        ("==2.5.1+cu124", "2.13.0", "cu126", "==2.13.0+cu126"),  # the local part follows the index
        ("==2.5.1+cu124", "2.13.0", None, "==2.13.0+cu124"),
        ("==2.5.1", "2.13.0", "cu126", "==2.13.0"),  # no local part: none added
        ("== 1.20.1", "1.26.0", None, "== 1.26.0"),
        ("===1.20.1", "1.26.0", None, "===1.26.0"),
        (">=13.0,<13.4", "13.6.0", None, ">=13.0,<13.7"),
    ],
)
def test_pins_take_the_version_and_ranges_move(spec: str, version: str, variant: str | None, expected: str) -> None:
    assert pin_or_range(spec, version, variant).text == expected


@pytest.mark.parametrize(
    ("url", "variant", "moved"),
    [
        ("https://download.pytorch.org/whl/cu124", "cu124", "https://download.pytorch.org/whl/cu126"),
        ("https://download.pytorch.org/whl/cu124/", "cu124", "https://download.pytorch.org/whl/cu126/"),
        ("https://download.pytorch.org/whl/nightly/cu128", "cu128", "https://download.pytorch.org/whl/nightly/cu126"),
        (
            "https://u:t@mirror.corp/api/pypi/pytorch-cu124/simple",
            "cu124",
            "https://u:t@mirror.corp/api/pypi/pytorch-cu126/simple",
        ),
        ("https://mirror.corp/whl_cu118/", "cu118", "https://mirror.corp/whl_cu126/"),
        ("https://download.pytorch.org/whl/cpu", None, None),
        ("https://cu124.example.com/simple", None, None),  # a host is not a variant
        ("https://pypi.org/simple/cu124x", None, None),
        ("https://pypi.org/simple", None, None),
    ],
)
def test_the_cuda_variant_of_an_index_url(url: str, variant: str | None, moved: str | None) -> None:
    assert variant_of(url) == variant
    assert with_variant(url, "cu126") == (moved or url)
    if variant is None:
        assert url_variant(url) is None


_VERSIONS = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)).map(lambda t: ".".join(map(str, t)))
_CLAUSE = st.tuples(st.sampled_from([">=", "<=", "<", ">", "~=", "=="]), _VERSIONS, st.integers(1, 3)).map(
    lambda c: c[0] + ".".join(c[1].split(".")[: max(c[2], 2 if c[0] == "~=" else 1)])
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_CLAUSE, min_size=1, max_size=3), _VERSIONS)
def test_every_moved_specifier_admits_the_choice(specs: list[str], version: str) -> None:
    spec = ",".join(specs)
    try:
        moved = admit(spec, version)
    except SpecifierError:
        return  # clauses that contradict each other around the choice: refused, never guessed
    assert SpecifierSet(moved.text).contains(Version(version), prereleases=True)
    if SpecifierSet(spec).contains(Version(version), prereleases=True):
        assert moved.text == spec
    assert len(moved.text.split(",")) == len(specs)
