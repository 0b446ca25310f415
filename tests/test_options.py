"""generator.options: copier.yml read once, combinations computed once."""

from __future__ import annotations

import pytest

from generator.options import OptionError, Options


def test_there_are_48_distinct_combinations(options: Options) -> None:
    combos = options.combinations()
    assert len(combos) == 48
    assert len({c.key for c in combos}) == 48
    assert len({c.values for c in combos}) == 48


def test_toggles_and_variants_come_from_copier_yml(options: Options) -> None:
    assert [t.name for t in options.toggles] == [
        "use_auth",
        "use_orm",
        "use_websockets",
        "use_background_tasks",
        "use_docker",
    ]
    assert [(v.name, v.toggle, v.choices) for v in options.variants] == [
        ("database", "use_orm", ("sqlite", "postgresql"))
    ]


def test_database_is_chosen_only_with_the_orm(options: Options) -> None:
    for combo in options.combinations():
        data = combo.data
        assert ("database" in data) == data["use_orm"]
    engines = [c.data.get("database") for c in options.combinations() if c.data["use_orm"]]
    assert engines.count("sqlite") == engines.count("postgresql") == 16


def test_keys_are_readable(options: Options) -> None:
    keys = {c.key for c in options.combinations()}
    assert "minimal" in keys
    assert "auth+orm+postgresql+websockets+background-tasks+docker" in keys
    assert "orm+sqlite" in keys


def test_combination_fills_defaults(options: Options) -> None:
    combo = options.combination({"use_orm": True})
    assert combo.data == {
        "use_auth": True,
        "use_orm": True,
        "use_websockets": False,
        "use_background_tasks": True,
        "use_docker": True,
        "database": "sqlite",
    }
    assert combo in options.combinations()


def test_combination_refuses_a_variant_without_its_toggle(options: Options) -> None:
    with pytest.raises(OptionError, match="database only applies when use_orm is true"):
        options.combination({"use_orm": False, "database": "postgresql"})


def test_combination_refuses_non_matrix_options(options: Options) -> None:
    with pytest.raises(OptionError, match="python_version is not a matrix option"):
        options.combination({"python_version": "3.13"})


def test_parse_assignments_types_values(options: Options) -> None:
    parsed = options.parse_assignments(
        ["use_orm=no", "database=postgresql", "project_name=A = B", "use_docker=TRUE"]
    )
    assert parsed == {
        "use_orm": False,
        "database": "postgresql",
        "project_name": "A = B",
        "use_docker": True,
    }


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("use_orm", "is not KEY=VALUE"),
        ("=true", "is not KEY=VALUE"),
        ("use_orn=true", "unknown option 'use_orn'"),
        ("use_orm=maybe", "use_orm: expected true or false"),
        ("database=mysql", "'mysql' is not one of sqlite, postgresql"),
        ("python_version=3.9", "'3.9' is not one of 3.11, 3.12, 3.13"),
        ("reserved_module_names=[]", "computed by the template"),
    ],
)
def test_parse_assignments_rejects(options: Options, pair: str, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        options.parse_assignments([pair])
