"""The template's options, read from copier.yml: the one source of truth.

Nothing here lists a question by hand. The questions, their types, choices and
defaults come from copier.yml; the combinations of the feature toggles are computed
from it, once, for `kiln matrix`, `kiln verify` and the template's tests alike.

Which questions form the matrix is read from their shape:
- a ``bool`` question is a toggle (``use_orm``);
- a question with ``choices`` that is only asked under a toggle (``when: "{{ use_orm }}"``)
  is a variant of that toggle (``database``).
Other questions (names, ``python_version``) keep their defaults in every combination.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

_WHEN_TOGGLE = re.compile(r"^\s*\{\{\s*(\w+)\s*\}\}\s*$")


class OptionError(ValueError):
    """An option given by the user does not fit copier.yml."""


def template_root() -> Path:
    """The directory holding copier.yml and template/.

    ``KILN_TEMPLATE`` names another one (a team's fork of the template). Otherwise a source
    checkout (editable install, tests, CI) renders from the repository itself, and an
    installed wheel from the copy of both it carries under ``generator/_template``.
    """
    if override := os.environ.get("KILN_TEMPLATE"):
        return Path(override).expanduser().resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "copier.yml").is_file() and (checkout / "template").is_dir():
        return checkout
    return Path(str(files("generator") / "_template"))


@dataclass(frozen=True)
class Question:
    """One question of copier.yml, as far as Kiln needs to know it."""

    name: str
    type: str
    help: str
    default: Any
    choices: tuple[str, ...] = ()
    when: str | bool | None = None

    @property
    def asked(self) -> bool:
        """False for computed values (``when: false``), which are never asked or recorded."""
        return self.when is not False

    @property
    def toggle(self) -> str | None:
        """The toggle this question depends on (``when: "{{ use_orm }}"``), if any."""
        if isinstance(self.when, str) and (match := _WHEN_TOGGLE.match(self.when)):
            return match.group(1)
        return None

    @property
    def templated_default(self) -> bool:
        return isinstance(self.default, str) and "{{" in self.default

    def parse(self, raw: str) -> Any:
        """Turn a command-line string into this question's answer, or raise OptionError."""
        if self.type == "bool":
            lowered = raw.strip().lower()
            if lowered in {"true", "yes", "y", "on", "1"}:
                return True
            if lowered in {"false", "no", "n", "off", "0"}:
                return False
            raise OptionError(f"{self.name}: expected true or false, got {raw!r}")
        if self.type == "int":
            try:
                return int(raw)
            except ValueError:
                raise OptionError(f"{self.name}: expected a whole number, got {raw!r}") from None
        if self.choices and raw not in self.choices:
            raise OptionError(f"{self.name}: {raw!r} is not one of {', '.join(self.choices)}")
        return raw


def flag_name(question: Question) -> str:
    """The command-line name of a question: ``use_background_tasks`` -> ``background-tasks``."""
    return question.name.removeprefix("use_").replace("_", "-")


@dataclass(frozen=True)
class Combination:
    """One combination of the feature toggles, with a stable readable key."""

    values: tuple[tuple[str, Any], ...]
    key: str = field(compare=False)

    @property
    def data(self) -> dict[str, Any]:
        """The answers to pass to Copier."""
        return dict(self.values)


@dataclass(frozen=True)
class Options:
    """The questions of copier.yml and what follows from them."""

    questions: tuple[Question, ...]

    def __getitem__(self, name: str) -> Question:
        for question in self.questions:
            if question.name == name:
                return question
        raise OptionError(f"unknown option {name!r}; `kiln options` lists them")

    @property
    def asked(self) -> tuple[Question, ...]:
        return tuple(q for q in self.questions if q.asked)

    @property
    def toggles(self) -> tuple[Question, ...]:
        return tuple(q for q in self.asked if q.type == "bool")

    @property
    def variants(self) -> tuple[Question, ...]:
        """Choice questions asked only under a toggle: part of the matrix."""
        toggle_names = {t.name for t in self.toggles}
        return tuple(q for q in self.asked if q.choices and q.toggle in toggle_names)

    def combinations(self) -> list[Combination]:
        """Every valid combination of toggles and their variants, each exactly once."""
        toggles = self.toggles
        combos: list[Combination] = []
        for flags in itertools.product((False, True), repeat=len(toggles)):
            answers = {t.name: flag for t, flag in zip(toggles, flags, strict=True)}
            variant_axes = [
                [(v.name, choice) for choice in v.choices]
                for v in self.variants
                if answers[v.toggle or ""]
            ]
            for picks in itertools.product(*variant_axes):
                values: dict[str, Any] = dict(answers)
                values.update(picks)
                combos.append(self._combination(values))
        return combos

    def combination(self, assignments: Mapping[str, Any]) -> Combination:
        """The combination for the given toggle answers (others at their defaults)."""
        matrix_names = {q.name for q in (*self.toggles, *self.variants)}
        for name in assignments:
            if name not in matrix_names:
                self[name]  # raises for unknown names
                raise OptionError(
                    f"{name} is not a matrix option; choose among {', '.join(sorted(matrix_names))}"
                )
        values: dict[str, Any] = {t.name: assignments.get(t.name, t.default) for t in self.toggles}
        for variant in self.variants:
            if values[variant.toggle or ""]:
                values[variant.name] = assignments.get(variant.name, variant.default)
            elif variant.name in assignments:
                raise OptionError(
                    f"{variant.name} only applies when {variant.toggle} is true; "
                    f"add {variant.toggle}=true or drop {variant.name}"
                )
        return self._combination(values)

    def parse_assignments(self, pairs: Iterable[str]) -> dict[str, Any]:
        """Parse ``KEY=VALUE`` strings against the questions; raise OptionError when wrong."""
        parsed: dict[str, Any] = {}
        for pair in pairs:
            name, sep, raw = pair.partition("=")
            name = name.strip()
            if not sep or not name:
                raise OptionError(f"{pair!r} is not KEY=VALUE (e.g. use_orm=false)")
            question = self[name]
            if not question.asked:
                raise OptionError(f"{name} is computed by the template and cannot be set")
            parsed[name] = question.parse(raw)
        return parsed

    def _combination(self, values: Mapping[str, Any]) -> Combination:
        parts: list[str] = []
        for toggle in self.toggles:
            if values[toggle.name]:
                parts.append(toggle.name.removeprefix("use_").replace("_", "-"))
                parts.extend(str(values[v.name]) for v in self.variants if v.toggle == toggle.name)
        return Combination(values=tuple(values.items()), key="+".join(parts) or "minimal")


def _question(name: str, spec: Any) -> Question:
    if not isinstance(spec, dict):
        spec = {"default": spec}
    choices = spec.get("choices") or ()
    if isinstance(choices, dict):
        choices = tuple(str(v) for v in choices.values())
    return Question(
        name=name,
        type=str(spec.get("type", "str")),
        help=str(spec.get("help", "")).strip(),
        default=spec.get("default"),
        choices=tuple(str(c) for c in choices),
        when=spec.get("when"),
    )


def load_options(copier_yml: Path | None = None) -> Options:
    """Read the questions of copier.yml (settings, the ``_`` keys, are skipped)."""
    path = copier_yml or template_root() / "copier.yml"
    return _load(path.resolve())


@cache
def _load(path: Path) -> Options:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise OptionError(f"{path} does not hold a mapping of questions")
    return Options(
        tuple(_question(name, spec) for name, spec in raw.items() if not name.startswith("_"))
    )
