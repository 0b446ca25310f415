"""Taking later template versions, or changed answers, into an existing project.

`kiln update` and `kiln status` go through here. Copier does the three-way merge; this module
adds the safe choices (inline conflict markers, a clean git tree first, a preview that runs
on a throw-away clone) and says what changed in words a user can act on.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import copier
import yaml
from packaging.version import InvalidVersion, Version
from plumbum import local

from generator.options import Options, flag_name
from generator.project import MAX_PACKAGE_NAME

ANSWERS_FILE = ".copier-answers.yml"

#: The first line Copier writes for each inline conflict (``conflict="inline"``).
CONFLICT_MARKER = "<<<<<<< before updating"

#: ``git describe`` of a commit after a tag: ``0.2.0-3-gabc1234``.
_DESCRIBED = re.compile(r"^(?P<base>.+)-(?P<count>\d+)-(?P<hash>g[0-9a-f]+)$")

#: How long one git command (a clone, a remote's tags) may take.
GIT_TIMEOUT_SECONDS = 60

#: Copier's shortcuts for template sources.
_ALIASES = {"gh:": "https://github.com", "gl:": "https://gitlab.com"}

#: Migration files that a database may already have run: editing them does not reach it.
_REVISION_FILE = re.compile(r"^migrations/versions/.+\.py$")


class UpdateError(Exception):
    """Why a project cannot be updated or inspected (one line, for users); raised before
    anything in the project changed."""


class UpdateStopped(UpdateError):
    """The update began and failed; the message says how to see and undo what it did."""


@dataclass(frozen=True)
class ProjectStatus:
    """Where a project came from and what it was generated with."""

    path: Path
    source: str
    version: str
    latest: str | None
    features: dict[str, bool]
    answers: dict[str, Any]

    @property
    def outdated(self) -> bool:
        """Whether the template has a release newer than the project's."""
        latest = parse_version(self.latest) if self.latest else None
        if latest is None:
            return False
        current = parse_version(self.version)
        return current is None or latest > current


@dataclass
class UpdateReport:
    """What an update did (or, with ``pretend``, would do) to a project."""

    version_before: str
    version_after: str
    changed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    revisions_changed: list[str] = field(default_factory=list)
    pretend: bool = False


def parse_version(described: str) -> Version | None:
    """A tag or ``git describe`` output as a version: ``v0.2.0`` -> 0.2.0,
    ``v0.2.0-3-gabc1234`` -> 0.2.0.post3+gabc1234; None when it is neither."""
    text = described.removeprefix("v")
    if match := _DESCRIBED.match(text):
        text = f"{match['base']}.post{match['count']}+{match['hash']}"
    try:
        return Version(text)
    except InvalidVersion:
        return None


def read_project_answers(path: Path, options: Options) -> dict[str, Any]:
    """The recorded answers of a Kiln project; UpdateError when ``path`` is not one."""
    if not path.is_dir():
        raise UpdateError(f"{path} is not a directory; give the path of a generated project")
    answers_path = path / ANSWERS_FILE
    if not answers_path.is_file():
        raise UpdateError(
            f"{path} has no {ANSWERS_FILE}, so its template and answers are unknown; "
            "restore the file from git (it is written when the project is generated)"
        )
    try:
        answers = yaml.safe_load(answers_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UpdateError(f"{answers_path} is not valid YAML; restore it from git") from exc
    if not isinstance(answers, dict):
        raise UpdateError(f"{answers_path} holds no answers; restore it from git")
    # A project made before a toggle existed lacks its answer: the toggle is off there.
    known = [q.name for q in options.toggles if q.name in answers]
    if not known or "_src_path" not in answers:
        raise UpdateError(
            f"{path} was not generated from the Kiln template (its {ANSWERS_FILE} has "
            "none of Kiln's feature answers); use the tool that generated it"
        )
    return answers


def project_status(path: Path, options: Options) -> ProjectStatus:
    """The project's template, its version, the newest release, and its features."""
    answers = read_project_answers(path, options)
    source = str(answers["_src_path"])
    return ProjectStatus(
        path=path,
        source=source,
        version=str(answers.get("_commit", "unknown")),
        latest=latest_release(source),
        features={q.name: bool(answers.get(q.name)) for q in options.toggles},
        answers={k: v for k, v in answers.items() if not k.startswith("_")},
    )


def latest_release(source: str) -> str | None:
    """The newest release tag (PEP 440, no pre-releases) of the template at ``source``.

    None when the template cannot be reached or has no release tags.
    """
    for alias, host in _ALIASES.items():
        if source.startswith(alias):
            source = f"{host}/{source.removeprefix(alias)}"
    try:
        listing = _git(Path.cwd(), "ls-remote", "--tags", "--refs", source)
    except UpdateError:
        return None
    releases: list[tuple[Version, str]] = []
    for line in listing.splitlines():
        tag = line.rpartition("refs/tags/")[2]
        version = parse_version(tag)
        if version is not None and not version.is_prerelease:
            releases.append((version, tag))
    return max(releases)[1] if releases else None


def update_project(
    path: Path,
    options: Options,
    data: Mapping[str, Any],
    *,
    vcs_ref: str | None = None,
    pretend: bool = False,
) -> UpdateReport:
    """Update the project at ``path`` to ``vcs_ref`` (default: the newest release), with the
    answers in ``data`` changed; conflicts are written inline for the user to resolve.

    The project may be a repository of its own or a folder of a larger one (a monorepo).
    Refuses, changing nothing, when the update could not be reviewed and undone there
    (``_require_clean_tree`` says why) or the recorded package name is no longer allowed.
    With ``pretend`` the update runs on a throw-away clone of the repository and the report
    says what it would do.
    """
    answers = read_project_answers(path, options)
    _check_answers(options, answers, data)
    package = str(answers.get("package_name", ""))
    if len(package) > MAX_PACKAGE_NAME:
        # Copier would drop the recorded name as invalid and fail half-way through.
        raise UpdateError(
            f"{path} has the package {package}, {len(package)} characters long; this template "
            f"allows {MAX_PACKAGE_NAME}: rename the package, record the new name as "
            f"package_name in {ANSWERS_FILE}, commit, and update again"
        )
    top, inside = _repository_of(path)
    _require_clean_tree(path, top)
    version_before = str(answers.get("_commit", "unknown"))
    if not pretend:
        _run_update(path, data, vcs_ref)
        return _report(path, version_before, options, pretend=False)
    with tempfile.TemporaryDirectory(prefix="kiln-update-preview-") as scratch:
        clone = Path(scratch) / top.name
        # --shared borrows the repository's objects instead of copying them (a monorepo can
        # be large); the clone writes only to its own object store.
        _git(Path(scratch), "clone", "--quiet", "--shared", str(top), str(clone))
        try:
            _run_update(clone / inside, data, vcs_ref)
        except UpdateStopped as exc:
            raise UpdateError(str(exc.__cause__ or exc)) from exc
        return _report(clone / inside, version_before, options, pretend=True)


def _check_answers(options: Options, answers: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    """Reject changed answers that make no combination (a variant without its toggle)."""
    merged = {**answers, **data}
    for variant in options.variants:
        toggle = variant.toggle or ""
        if variant.name in data and not merged.get(toggle):
            raise UpdateError(f"{variant.name} needs {toggle}=true; add --data {toggle}=true")


def _repository_of(path: Path) -> tuple[Path, Path]:
    """The root of the git work tree holding ``path``, and ``path`` relative to it (``.`` for
    a project at the root; ``services/orders`` for one inside a monorepo)."""
    try:
        top = _git(path, "rev-parse", "--show-toplevel").rstrip("\n")
    except UpdateError as exc:
        if "not a git repository" not in str(exc):
            raise
        raise UpdateError(
            f"{path} is not in a git repository; `git init` and commit the project first, "
            "so the update can be reviewed and undone"
        ) from None
    root = Path(top).resolve()
    return root, path.resolve().relative_to(root)


def _require_clean_tree(path: Path, top: Path) -> None:
    """Refuse, with the reason, a project the update could not be reviewed and undone in.

    Copier applies an update through the whole repository, so in a monorepo the other folders
    must hold no uncommitted change to tracked files either (untracked files may stay), the
    work tree must be whole (no sparse checkout), and no ``.rej`` file may be left anywhere.
    """
    if changes := _status_entries(path, "--untracked-files=normal", "--", "."):
        raise UpdateError(
            f"{path} has uncommitted changes ({_paths(len(changes))}); commit or stash them "
            "first, so the update can be reviewed and undone"
        )
    if not _is_tracked(path, ANSWERS_FILE):
        raise UpdateError(
            f"{path / ANSWERS_FILE} is not committed (its folder may be ignored by git): "
            "add the project (`git add -f` past an ignore rule) and commit it first, so the "
            "update can be reviewed and undone"
        )
    elsewhere = _status_entries(top, "--untracked-files=no")
    if elsewhere:
        raise UpdateError(
            f"{top} has uncommitted changes outside the project ({_paths(len(elsewhere))}, "
            f"such as {elsewhere[0]}); commit or stash them first: the update is "
            "applied through the whole repository"
        )
    if _git(top, "config", "--type=bool", "--default=false", "core.sparseCheckout").strip() == (
        "true"
    ):
        raise UpdateError(
            f"{top} is a sparse checkout; the update needs the whole work tree: "
            "`git sparse-checkout disable` first"
        )
    # Found the way Copier looks for its own conflict files after applying the update.
    leftovers = [name for name in _status_entries(top, "--ignored") if name.endswith(".rej")]
    if leftovers:
        raise UpdateError(
            f"{top / leftovers[0]} is left from an earlier update; apply what it holds by "
            "hand and delete it first (the update would take it for one of its own)"
        )


def _paths(count: int) -> str:
    return f"{count} {'path' if count == 1 else 'paths'}"


def _run_update(path: Path, data: Mapping[str, Any], vcs_ref: str | None) -> None:
    try:
        with warnings.catch_warnings(), _git_settings_for_copier():
            warnings.simplefilter("ignore")  # Copier warns about dirty templates and versions
            copier.run_update(
                path,
                data=dict(data),
                defaults=True,
                overwrite=True,
                conflict="inline",
                vcs_ref=vcs_ref,
                quiet=True,
                unsafe=False,
            )
    except (ValueError, OSError, copier.errors.CopierError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise UpdateStopped(
            f"the update stopped: {reason}; `git status` shows anything it changed and "
            f"`{undo_command(path)}` undoes it"
        ) from exc


def undo_command(path: Path) -> str:
    """The shell command that puts the project at ``path`` back to its last commit, conflicts
    and new files included; other folders of its repository (a monorepo) are left alone."""
    where = shlex.quote(str(path))
    return (
        f"git -C {where} restore --source=HEAD --staged --worktree -- . && "
        f"git -C {where} clean -fdq -- ."
    )


#: Settings of the user's git configuration that Copier's own git calls must not follow:
#: with untracked files hidden from `git status`, it would miss the conflicts it left.
_GIT_OVERRIDES = {"status.showUntrackedFiles": "normal"}


def _git_overrides(environment: Mapping[str, str]) -> dict[str, str]:
    """``GIT_CONFIG_*`` variables that add ``_GIT_OVERRIDES`` to those ``environment`` has.

    ``git -c`` settings of a caller (an alias, a hook) reach its child processes in
    ``GIT_CONFIG_PARAMETERS``, which git reads after ``GIT_CONFIG_COUNT``: the overrides go at
    its end too, where the last of a key wins.
    """
    count = environment.get("GIT_CONFIG_COUNT") or "0"
    if not count.isdigit():
        raise UpdateError(f"GIT_CONFIG_COUNT is {count!r}, not a number; unset or correct it")
    first = int(count)
    variables = {"GIT_CONFIG_COUNT": str(first + len(_GIT_OVERRIDES))}
    for index, (key, value) in enumerate(_GIT_OVERRIDES.items(), start=first):
        variables[f"GIT_CONFIG_KEY_{index}"] = key
        variables[f"GIT_CONFIG_VALUE_{index}"] = value
    parameters = environment.get("GIT_CONFIG_PARAMETERS", "").strip()
    if parameters:
        # Each entry single-quoted, as git writes them; the overrides hold no quote.
        added = " ".join(f"'{key}={value}'" for key, value in _GIT_OVERRIDES.items())
        variables["GIT_CONFIG_PARAMETERS"] = f"{parameters} {added}"
    return variables


#: plumbum's environment is the process's: one update at a time changes it.
_COPIER_ENVIRONMENT = threading.Lock()


@contextmanager
def _git_settings_for_copier() -> Iterator[None]:
    """Run Copier with ``_GIT_OVERRIDES``: its git commands take their environment from
    plumbum's copy of it, not from ``os.environ``."""
    with _COPIER_ENVIRONMENT, local.env(**_git_overrides(local.env.getdict())):
        yield


def _report(path: Path, version_before: str, options: Options, *, pretend: bool) -> UpdateReport:
    answers = read_project_answers(path, options)
    changed = changed_paths(path)
    conflicts = [name for name in changed if _has_conflict(path / name)]
    revisions = [name for name in changed if _REVISION_FILE.match(name) and _is_tracked(path, name)]
    return UpdateReport(
        version_before=version_before,
        version_after=str(answers.get("_commit", "unknown")),
        changed=changed,
        conflicts=conflicts,
        revisions_changed=revisions,
        pretend=pretend,
    )


def changed_paths(path: Path) -> list[str]:
    """The paths under ``path`` that ``git status`` reports, relative to ``path``; a rename by
    its new name."""
    prefix = _git(path, "rev-parse", "--show-prefix").rstrip("\n")
    entries = _status_entries(path, "--untracked-files=all", "--", ".")
    # Porcelain paths are the repository's, wherever git runs.
    return sorted(name.removeprefix(prefix) for name in entries)


def _status_entries(cwd: Path, *options: str) -> list[str]:
    """The paths ``git status --porcelain`` reports, unquoted (``-z``); a rename or copy by
    its new name."""
    fields = _git(cwd, "status", "--porcelain", "-z", *options).split("\0")
    names = []
    entries = iter(fields)
    for entry in entries:
        if not entry:
            continue
        status, name = entry[:2], entry[3:]
        if "R" in status or "C" in status:
            next(entries, None)  # the old name of a rename or copy
        names.append(name)
    return names


def _has_conflict(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return any(line.startswith(CONFLICT_MARKER) for line in text.splitlines())


def _is_tracked(path: Path, name: str) -> bool:
    try:
        _git(path, "ls-files", "--error-unmatch", name)
    except UpdateError:
        return False
    return True


def _git(cwd: Path, *args: str) -> str:
    git = shutil.which("git")
    if git is None:
        raise UpdateError("git is not installed; Copier needs it to update projects")
    try:
        result = subprocess.run(  # noqa: S603 - fixed git subcommands
            [git, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            # Never wait for a password; read the work tree as Copier does.
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **_git_overrides(os.environ)},
            timeout=GIT_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise UpdateError(f"git {args[0]} gave no answer within {GIT_TIMEOUT_SECONDS} s") from None
    if result.returncode != 0:
        raise UpdateError(f"git {args[0]} failed: {result.stderr.strip() or result.returncode}")
    return result.stdout


def summarize(report: UpdateReport) -> list[str]:
    """The report as lines for the terminal."""
    verb = "would change" if report.pretend else "changed"
    lines = [f"{report.version_before} -> {report.version_after}: {verb} {len(report.changed)}"]
    lines += [f"  {name}" for name in report.changed]
    if report.conflicts:
        if report.pretend:
            lines.append(f"conflicts it would mark inline ({len(report.conflicts)}):")
        else:
            lines.append(f"conflicts to resolve ({len(report.conflicts)}), marked inline:")
        lines += [f"  {name}" for name in report.conflicts]
    for name in report.revisions_changed:
        verb = "would change" if report.pretend else "changed"
        lines.append(
            f"note: {name} {verb}; a database that already ran it will not see the change: "
            "keep the old file and add a revision (alembic revision --autogenerate)"
        )
    return lines


def recorded_features(answers: Mapping[str, Any], options: Options) -> Sequence[str]:
    """The toggles that are on, with their variants: ``["auth", "orm (sqlite)"]``."""
    features = []
    for toggle in options.toggles:
        if not answers.get(toggle.name):
            continue
        name = flag_name(toggle)
        variants = [str(answers[v.name]) for v in options.variants if v.toggle == toggle.name]
        features.append(f"{name} ({', '.join(variants)})" if variants else name)
    return features
