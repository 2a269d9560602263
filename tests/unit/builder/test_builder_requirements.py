"""Requirements before isolated environments: accepted only when the platform already has them."""

from __future__ import annotations

import pytest

from kingpost.errors import InvalidArgument
from kingpost_builder.requirements import check_requirements, installed_version, requirement_lines

PLATFORM = {"numpy": "1.26.4", "pydantic": "2.14.4", "torch": None}


def version_of(name: str) -> str | None:
    return PLATFORM.get(name)


def test_no_requirements_no_warning() -> None:
    assert check_requirements([], version_of=version_of) == []


def test_satisfied_requirements_are_accepted_with_a_warning() -> None:
    warnings = check_requirements(["numpy>=1.20", "pydantic==2.*", "Numpy"], version_of=version_of)
    assert len(warnings) == 1 and "not installed by kingpost yet" in warnings[0]


def test_missing_package_fails_naming_it_and_why() -> None:
    with pytest.raises(InvalidArgument) as info:
        check_requirements(["numpy", "torch==2.3.0"], version_of=version_of)
    assert "torch==2.3.0" in info.value.message
    assert "isolated environments" in info.value.message
    assert "numpy" not in info.value.message.split("platform:")[1].split(";")[0]


def test_wrong_version_fails_with_the_version_the_platform_has() -> None:
    with pytest.raises(InvalidArgument, match=r"numpy<1.20 \(the platform has 1.26.4\)"):
        check_requirements(["numpy<1.20"], version_of=version_of)


def test_marker_that_does_not_apply_is_skipped() -> None:
    assert check_requirements(['torch; python_version < "3.0"'], version_of=version_of)


def test_url_requirements_and_pip_options_cannot_be_honoured() -> None:
    with pytest.raises(InvalidArgument, match="not installed"):
        check_requirements(["numpy @ https://example.com/numpy.whl"], version_of=version_of)
    with pytest.raises(InvalidArgument, match="pip option '--index-url x'"):
        check_requirements(["--index-url x"], version_of=version_of)
    with pytest.raises(InvalidArgument, match="not a valid requirement"):
        check_requirements(["numpy>>1"], version_of=version_of)


def test_requirement_lines_drop_comments() -> None:
    assert requirement_lines("# pinned\nnumpy==1.26.4  # fast\n\n  pydantic\n") == ["numpy==1.26.4", "pydantic"]


def test_installed_version_reads_this_environment() -> None:
    assert installed_version("packaging")
    assert installed_version("surely-not-a-real-distribution-name") is None
