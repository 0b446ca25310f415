"""copier.yml: the questions, their defaults and validators, rendered through Copier."""

from __future__ import annotations

import keyword
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_copie.plugin import Copie

from generator.options import Options
from generator.project import CHECK_PACKAGE, MAX_PACKAGE_NAME

NAME = {"project_name": "Orders Service"}


def answers_of(project: Path) -> dict[str, Any]:
    data = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_defaults_are_the_documented_ones(copie: Copie) -> None:
    result = copie.copy(extra_answers=NAME)
    assert result.exception is None, result.exception
    assert result.project_dir is not None
    answers = answers_of(result.project_dir)
    assert answers["project_slug"] == "orders-service"
    assert answers["package_name"] == "orders_service"
    assert answers["python_version"] == "3.12"
    assert answers["use_auth"] is True
    assert answers["use_orm"] is True
    assert answers["database"] == "sqlite"
    assert answers["use_websockets"] is False
    assert answers["use_background_tasks"] is True
    assert answers["use_docker"] is True


def test_answers_file_records_answers_but_no_computed_values(copie: Copie) -> None:
    result = copie.copy(extra_answers={**NAME, "use_orm": False})
    assert result.project_dir is not None
    answers = answers_of(result.project_dir)
    assert "_src_path" in answers
    assert "_commit" in answers
    assert "reserved_module_names" not in answers
    # `database` is only asked with the ORM, so it is not recorded without it
    assert "database" not in answers
    assert not any("secret" in key or "password" in key for key in answers)


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"project_name": "Billing API"}, ("billing-api", "billing_api")),
        ({"project_name": "  Spaced   Out  "}, ("spaced-out", "spaced_out")),
        ({"project_name": "X", "project_slug": "x2-svc"}, ("x2-svc", "x2_svc")),
        (
            {"project_name": "X", "project_slug": "abc", "package_name": "abc_core"},
            ("abc", "abc_core"),
        ),
    ],
)
def test_slug_and_package_are_derived(
    copie: Copie, answers: dict[str, str], expected: tuple[str, str]
) -> None:
    result = copie.copy(extra_answers=answers)
    assert result.exception is None, result.exception
    assert result.project_dir is not None
    recorded = answers_of(result.project_dir)
    assert (recorded["project_slug"], recorded["package_name"]) == expected


BAD_ANSWERS = [
    ("project_name", "", "must not be empty"),
    ("project_name", "   ", "must not be empty"),
    ("project_name", 'The "Best" Service', "no double quotes"),
    ("project_name", "Back\\slash", "backslashes"),
    ("description", "two\nlines", "line breaks"),
    ("description", "", "must not be empty"),
    ("author_name", 'Ann "A" Lee', "no double quotes"),
    ("project_slug", "1service", "starting with a letter"),
    ("project_slug", "Orders", "lowercase"),
    ("project_slug", "orders service", "lowercase"),
    ("project_slug", "orders_service", "lowercase"),
    ("project_slug", "ordérs", "lowercase"),
    ("package_name", "typing", "standard-library"),
    ("package_name", "test", "standard-library"),
    ("package_name", "fastapi", "dependency"),
    ("package_name", "sqlalchemy", "dependency"),
    ("package_name", "class", "keyword"),
    ("package_name", "orders-service", "not a valid package name"),
    ("package_name", "1orders", "not a valid package name"),
    ("package_name", "Orders", "not a valid package name"),
    ("package_name", f"{CHECK_PACKAGE}s", "is 33 characters long; use at most 32"),
    ("author_email", "nobody", "not an email address"),
    ("author_email", "a@b", "not an email address"),
    ("author_email", "two words@example.com", "not an email address"),
]


@pytest.mark.parametrize(("question", "value", "message"), BAD_ANSWERS)
def test_bad_answers_fail_naming_question_and_rule(
    copie: Copie, question: str, value: str, message: str
) -> None:
    answers = {"project_name": "Orders Service", question: value}
    if question == "project_name":
        answers["project_slug"] = "orders-service"
    result = copie.copy(extra_answers=answers)
    assert result.exit_code != 0
    text = str(result.exception)
    assert f"question '{question}'" in text
    assert message in text
    assert "\n" not in text.replace(repr(value)[1:-1], "").strip()
    assert result.project_dir is None


def test_the_longest_allowed_package_name_is_the_one_every_combination_is_checked_with(
    copie: Copie,
) -> None:
    result = copie.copy(extra_answers={**NAME, "package_name": CHECK_PACKAGE})

    assert result.exit_code == 0, result.exception
    assert result.project_dir is not None
    assert answers_of(result.project_dir)["package_name"] == CHECK_PACKAGE
    assert len(CHECK_PACKAGE) == MAX_PACKAGE_NAME  # the bad answer above is one longer


@pytest.mark.parametrize(("question", "value"), [("database", "mysql"), ("python_version", "3.9")])
def test_choices_are_enforced(copie: Copie, question: str, value: str) -> None:
    result = copie.copy(extra_answers={**NAME, question: value})
    assert result.exit_code != 0
    assert value in str(result.exception)


def test_every_asked_question_has_help(options: Options) -> None:
    for question in options.asked:
        assert question.help, f"{question.name} has no help text"


def test_reserved_names_cover_keywords_and_stdlib(options: Options) -> None:
    reserved = set(yaml.safe_load(options["reserved_module_names"].default))
    lowered = {name.lower() for name in (*keyword.kwlist, *keyword.softkwlist) if name != "_"}
    assert lowered <= reserved
    stdlib = {name.lower() for name in sys.stdlib_module_names if not name.startswith("_")}
    assert stdlib <= reserved, sorted(stdlib - reserved)
