"""`kiln update` and `kiln status` on a throw-away git repository of the template.

The repository gets two releases made from the working tree: v0.2.0 is the tree as it is,
v0.1.0 the same tree with known differences (a file the newer release adds, a docstring it
rewrites, a README line it rewords). Projects are generated at v0.1.0, committed, edited the
way users edit them, and updated; then their own gates must pass.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from plumbum import local
from typer.testing import CliRunner

from generator.cli import app
from generator.options import Combination, Options
from generator.project import CHECK_PACKAGE, check, tail
from generator.update import CONFLICT_MARKER, changed_paths, undo_command, update_project

from .conftest import REPO
from .test_matrix import LOGS, require_services

OLD, NEW = "v0.1.0", "v0.2.0"
GIT = shutil.which("git") or "git"
#: The package name the matrix checks, so a project updated here is one the matrix ran.
PACKAGE = CHECK_PACKAGE

#: What v0.2.0 changed for generated projects: (template file, v0.1.0 text, v0.2.0 text).
README_OLD_LINE = (
    "Built with FastAPI: typed settings, structured JSON logs, request ids, RFC 9457 problem"
)
README_NEW_LINE = (
    "Built on FastAPI with typed settings, structured JSON logs, request ids, RFC 9457 problem"
)
LIVE_OLD_DOC = '"""Answers while the process runs."""'
LIVE_NEW_DOC = '"""The process is up and serving requests."""'
ADDED_FILE = ".pre-commit-config.yaml"

#: The user's edits.
USER_ROUTE = '''

@read_router.get("/stats/count")
async def count_items(service: ItemServiceDep) -> dict[str, int]:
    """How many items there are."""
    page = await service.list_items(ItemQuery(limit=1))
    return {"count": page.total}
'''
USER_README_LINE = (
    "Our team's inventory service, built on FastAPI with typed settings, logs and request ids"
)
USER_README_SECTION = "\n## Team notes\n\nDeployments happen on Tuesdays.\n"
USER_FILE = "docs/runbook.md"
USER_FILE_TEXT = "# Runbook\n\nRestart with `systemctl restart inventory`.\n"
TIMEOUT_DEFAULT_OLD = "readiness_timeout_seconds: float = Field(default=2.0, gt=0)"
TIMEOUT_DEFAULT_USER = "readiness_timeout_seconds: float = Field(default=5.0, gt=0)"


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - git with the tests' own arguments
        [GIT, "-c", "user.name=Kiln Tests", "-c", "user.email=tests@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def commit_all(cwd: Path, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "--quiet", "--no-verify", "-m", message)


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository of the template (working tree) with releases v0.1.0 and v0.2.0."""
    root = tmp_path_factory.mktemp("template-repo") / "kiln"
    root.mkdir()
    shutil.copy2(REPO / "copier.yml", root / "copier.yml")
    shutil.copytree(REPO / "template", root / "template")
    git(root, "init", "--quiet", "--initial-branch=main")
    commit_all(root, "v0.2.0 tree")

    template = root / "template"
    (template / ADDED_FILE).unlink()
    _replace(template / "README.md.jinja", README_NEW_LINE, README_OLD_LINE)
    _replace(
        template / "src" / "{{package_name}}" / "health" / "router.py.jinja",
        LIVE_NEW_DOC,
        LIVE_OLD_DOC,
    )
    commit_all(root, "The first release")
    git(root, "tag", OLD)
    git(root, "revert", "--no-edit", "HEAD")
    git(root, "tag", NEW)
    return root


def render_release(template_repo: Path, dest: Path, data: dict[str, Any], ref: str) -> None:
    """Render a project of the template at release ``ref``."""
    copier.run_copy(
        str(template_repo),
        dest,
        data={"project_name": "Kiln Check", "package_name": PACKAGE, **data},
        defaults=True,
        vcs_ref=ref,
        quiet=True,
    )


def generate(template_repo: Path, dest: Path, data: dict[str, Any], ref: str) -> None:
    """Generate a project at release ``ref`` and commit it, as a user would."""
    render_release(template_repo, dest, data, ref)
    git(dest, "init", "--quiet", "--initial-branch=main")
    commit_all(dest, "Generate the service")


def files(project: Path) -> dict[str, str]:
    """Every file of a project but git's own, with a digest of its content."""
    return {
        str(path.relative_to(project)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def gates_pass(project: Path, combination: Combination, name: str) -> None:
    """The project's own gates, run on a copy so the git tree stays as the update left it."""
    copy = project.parent / f"{project.name}-gates"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".git"))
    outcome = check(copy, combination, LOGS / f"{name}.log")
    if not outcome.ok:
        pytest.fail(
            f"{name} failed at {outcome.failed_gate}; full log: {outcome.log}\n"
            f"{tail(outcome.log, 60)}",
            pytrace=False,
        )
    outcome.log.unlink(missing_ok=True)
    shutil.rmtree(copy)


def edit_like_a_user(project: Path) -> None:
    package = project / "src" / PACKAGE
    router = package / "items" / "router.py"
    router.write_text(router.read_text(encoding="utf-8") + USER_ROUTE, encoding="utf-8")
    _replace(package / "core" / "config.py", TIMEOUT_DEFAULT_OLD, TIMEOUT_DEFAULT_USER)
    readme = project / "README.md"
    _replace(readme, README_OLD_LINE, USER_README_LINE)
    readme.write_text(readme.read_text(encoding="utf-8") + USER_README_SECTION, encoding="utf-8")
    (project / USER_FILE).parent.mkdir()
    (project / USER_FILE).write_text(USER_FILE_TEXT, encoding="utf-8")


def resolve_taking_ours(path: Path) -> None:
    """Resolve inline conflicts the way a user keeping their own lines would."""
    kept: list[str] = []
    side = None
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith(CONFLICT_MARKER):
            side = "ours"
        elif line.startswith("=======") and side == "ours":
            side = "theirs"
        elif line.startswith(">>>>>>>") and side == "theirs":
            side = None
        elif side != "theirs":
            kept.append(line)
    path.write_text("".join(kept), encoding="utf-8")


UPDATE_KEYS = [
    "minimal",
    "auth+orm+sqlite+background-tasks+docker",
    "auth+websockets",
    "orm+postgresql+background-tasks",
    "auth+orm+postgresql+websockets+background-tasks+docker",
    "orm+sqlite+websockets+docker",
]


@pytest.mark.matrix
@pytest.mark.parametrize("key", UPDATE_KEYS)
def test_update_keeps_user_edits_and_brings_the_new_release(
    key: str, options: Options, template_repo: Path, tmp_path: Path
) -> None:
    combination = {c.key: c for c in options.combinations()}[key]
    require_services(combination)
    project = tmp_path / "service"
    generate(template_repo, project, combination.data, OLD)
    edit_like_a_user(project)
    commit_all(project, "Our changes")
    before = files(project)

    report = update_project(project, options, {})

    assert (report.version_before, report.version_after) == (OLD, NEW)
    assert report.conflicts == ["README.md"]
    assert set(report.changed) == {
        ".copier-answers.yml",
        ADDED_FILE,
        "README.md",
        f"src/{PACKAGE}/health/router.py",
    }
    after = files(project)
    assert set(after) == set(before) | {ADDED_FILE}
    untouched = set(before) - set(report.changed)
    assert {name: after[name] for name in untouched} == {name: before[name] for name in untouched}
    package = project / "src" / PACKAGE
    assert USER_ROUTE in (package / "items" / "router.py").read_text(encoding="utf-8")
    assert TIMEOUT_DEFAULT_USER in (package / "core" / "config.py").read_text(encoding="utf-8")
    assert (project / USER_FILE).read_text(encoding="utf-8") == USER_FILE_TEXT
    assert LIVE_NEW_DOC in (package / "health" / "router.py").read_text(encoding="utf-8")
    readme = (project / "README.md").read_text(encoding="utf-8")
    ours = readme.index(USER_README_LINE)
    assert (
        readme.index(CONFLICT_MARKER)
        < ours
        < readme.index("=======")
        < readme.index(README_NEW_LINE)
    )
    assert readme.endswith(USER_README_SECTION)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["_commit"] == NEW

    resolve_taking_ours(project / "README.md")
    assert CONFLICT_MARKER not in (project / "README.md").read_text(encoding="utf-8")
    gates_pass(project, combination, f"update-{key}")


#: (combination generated, toggle turned on and then off again)
TOGGLE_CASES = [
    ("auth+orm+sqlite+background-tasks+docker", "use_websockets"),
    ("minimal", "use_orm"),
    ("orm+postgresql+websockets", "use_auth"),
]


@pytest.mark.matrix
@pytest.mark.parametrize(("key", "toggle"), TOGGLE_CASES, ids=[f"{k}:{t}" for k, t in TOGGLE_CASES])
def test_a_toggle_turned_on_later_works_and_off_again_leaves_no_trace(
    key: str, toggle: str, options: Options, template_repo: Path, tmp_path: Path
) -> None:
    combination = {c.key: c for c in options.combinations()}[key]
    require_services(combination)
    project = tmp_path / "service"
    generate(template_repo, project, combination.data, NEW)
    (project / USER_FILE).parent.mkdir()
    (project / USER_FILE).write_text(USER_FILE_TEXT, encoding="utf-8")
    commit_all(project, "Our runbook")
    original = files(project)

    report = update_project(project, options, {toggle: True})

    assert report.conflicts == []
    turned_on = options.combination({**combination.data, toggle: True})
    fresh = tmp_path / "fresh"
    render_release(template_repo, fresh, turned_on.data, NEW)
    # Byte for byte a fresh project of the new combination (plus the user's file), so its
    # gates are that combination's case in the matrix (tests/test_matrix.py).
    expected = files(fresh) | {USER_FILE: original[USER_FILE]}
    assert files(project) == expected

    commit_all(project, f"Turn {toggle} on")
    update_project(project, options, {toggle: False})

    assert files(project) == original


# --- refusals: one line, nothing changed ------------------------------------------------


def snapshot(path: Path) -> dict[str, str]:
    return files(path) | {
        str(p.relative_to(path)): "dir"
        for p in path.rglob("*")
        if p.is_dir() and ".git" not in p.parts
    }


@pytest.fixture
def project_at_old(template_repo: Path, tmp_path: Path) -> Path:
    project = tmp_path / "service"
    generate(template_repo, project, {"use_orm": False}, OLD)
    return project


def run_kiln(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stderr


RefusalSetup = Callable[[Path], None]


def _dirty(project: Path) -> None:
    (project / "README.md").write_text("Work in progress\n", encoding="utf-8")


def _no_answers(project: Path) -> None:
    (project / ".copier-answers.yml").unlink()
    commit_all(project, "Drop the answers")


def _foreign(project: Path) -> None:
    (project / ".copier-answers.yml").write_text(
        "_commit: v1.0.0\n_src_path: gh:someone/other-template\nproject_name: Other\n",
        encoding="utf-8",
    )
    commit_all(project, "Another template's answers")


def _not_git(project: Path) -> None:
    shutil.rmtree(project / ".git")


def _long_package(project: Path) -> None:
    # Generated by a release that allowed longer package names.
    answers = project / ".copier-answers.yml"
    _replace(answers, f"package_name: {PACKAGE}", f"package_name: {PACKAGE}s")
    commit_all(project, "A package name of an older release")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (_dirty, "has uncommitted changes (1 path); commit or stash them first"),
        (_no_answers, "has no .copier-answers.yml"),
        (_foreign, "was not generated from the Kiln template"),
        (_not_git, "is not in a git repository"),
        (_long_package, f"has the package {PACKAGE}s, 33 characters long; this template allows 32"),
    ],
    ids=["dirty-tree", "no-answers-file", "other-template", "not-git", "long-package"],
)
def test_update_refuses_with_one_line_and_changes_nothing(
    project_at_old: Path, setup: RefusalSetup, message: str
) -> None:
    setup(project_at_old)

    assert_refused(project_at_old, project_at_old, message)


def assert_refused(repository: Path, project: Path, message: str) -> None:
    """`kiln update project` fails with one line that says ``message``, and nothing in the
    repository changed."""
    before = snapshot(repository)

    code, stderr = run_kiln("update", str(project))

    assert code == 2
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("kiln: error: ")
    assert message in stderr
    assert stderr.rstrip().endswith("nothing was changed")
    assert snapshot(repository) == before


def test_update_refuses_a_variant_without_its_toggle(project_at_old: Path) -> None:
    before = snapshot(project_at_old)

    code, stderr = run_kiln("update", str(project_at_old), "--data", "database=postgresql")

    assert code == 2
    assert "database needs use_orm=true" in stderr
    assert snapshot(project_at_old) == before


def test_update_rejects_an_unknown_answer(project_at_old: Path) -> None:
    code, stderr = run_kiln("update", str(project_at_old), "--data", "use_kafka=true")

    assert code == 2
    assert "unknown option 'use_kafka'" in stderr


def test_pretend_reports_the_update_and_changes_nothing(project_at_old: Path) -> None:
    before = snapshot(project_at_old)
    head = git(project_at_old, "rev-parse", "HEAD")

    result = CliRunner().invoke(app, ["update", str(project_at_old), "--pretend"])

    assert result.exit_code == 0, result.output
    assert f"{OLD} -> {NEW}: would change 4" in result.stdout
    assert ADDED_FILE in result.stdout
    assert snapshot(project_at_old) == before
    assert git(project_at_old, "rev-parse", "HEAD") == head


def test_an_update_without_conflicts_succeeds(project_at_old: Path) -> None:
    result = CliRunner().invoke(app, ["update", str(project_at_old)])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "Review with `git diff`, run the tests, and commit."


def test_update_prints_changed_files_and_conflicts(project_at_old: Path) -> None:
    _replace(project_at_old / "README.md", README_OLD_LINE, USER_README_LINE)
    commit_all(project_at_old, "Our README")

    result = CliRunner().invoke(app, ["update", str(project_at_old)])

    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{OLD} -> {NEW}: changed 4"
    assert "conflicts to resolve (1), marked inline:" in lines
    assert lines[lines.index("conflicts to resolve (1), marked inline:") + 1] == "  README.md"


def test_status_tells_version_newer_release_and_features(project_at_old: Path) -> None:
    result = CliRunner().invoke(app, ["status", str(project_at_old)])

    assert result.exit_code == 0, result.output
    assert f"version:   {OLD} ({NEW} is newer: run `kiln update`)" in result.stdout
    assert "features:  auth, background-tasks, docker" in result.stdout
    assert "off:       orm, websockets" in result.stdout


def test_status_after_update_is_up_to_date(project_at_old: Path, options: Options) -> None:
    update_project(project_at_old, options, {})
    commit_all(project_at_old, "Update")

    result = CliRunner().invoke(app, ["status", str(project_at_old)])

    assert f"version:   {NEW} (up to date)" in result.stdout


def test_status_of_a_directory_without_answers_is_one_line(tmp_path: Path) -> None:
    code, stderr = run_kiln("status", str(tmp_path))

    assert code == 2
    assert stderr == (
        f"kiln: error: {tmp_path} has no .copier-answers.yml, so its template and answers are "
        "unknown; restore the file from git (it is written when the project is generated)\n"
    )


def test_recorded_answers_hold_no_secrets(project_at_old: Path, options: Options) -> None:
    answers = yaml.safe_load((project_at_old / ".copier-answers.yml").read_text(encoding="utf-8"))

    asked = {q.name for q in options.asked}
    assert set(answers) - asked == {"_commit", "_src_path"}
    assert not any("secret" in name or "password" in name for name in answers)


def test_a_project_from_before_a_toggle_existed_is_still_kiln(
    project_at_old: Path, options: Options
) -> None:
    answers_path = project_at_old / ".copier-answers.yml"
    answers = yaml.safe_load(answers_path.read_text(encoding="utf-8"))
    del answers["use_docker"]
    answers_path.write_text(yaml.safe_dump(answers), encoding="utf-8")
    commit_all(project_at_old, "Answers of an older Kiln")

    result = CliRunner().invoke(app, ["status", str(project_at_old)])

    assert result.exit_code == 0, result.output
    assert "docker" in result.stdout.splitlines()[-1]  # the "off:" line


def test_pretend_says_which_conflicts_it_would_leave(project_at_old: Path) -> None:
    _replace(project_at_old / "README.md", README_OLD_LINE, USER_README_LINE)
    commit_all(project_at_old, "Our README")

    result = CliRunner().invoke(app, ["update", str(project_at_old), "--pretend"])

    assert result.exit_code == 0, result.output
    assert "conflicts it would mark inline (1):" in result.stdout
    assert CONFLICT_MARKER not in (project_at_old / "README.md").read_text(encoding="utf-8")


def test_changed_paths_are_read_unquoted(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")
    (tmp_path / "café notes.md").write_text("x\n", encoding="utf-8")
    (tmp_path / "plain.txt").write_text("y\n", encoding="utf-8")
    commit_all(tmp_path, "Two files")
    git(tmp_path, "mv", "plain.txt", "renamed.txt")
    (tmp_path / "café notes.md").write_text("changed\n", encoding="utf-8")

    assert changed_paths(tmp_path) == ["café notes.md", "renamed.txt"]


# --- a project in a folder of a larger repository (a monorepo) --------------------------

MONOREPO_PROJECT = Path("services") / "orders"
OTHER_SERVICE_FILE = Path("services") / "billing" / "notes.md"
#: Another service's work in progress, not yet added to git: the update leaves it alone.
OTHER_SERVICE_DRAFT = Path("services") / "billing" / "draft.md"
DRAFT_TEXT = "# Billing\n\nDraft.\n"


@pytest.fixture
def monorepo(template_repo: Path, tmp_path: Path) -> Path:
    """A repository holding a project at v0.1.0 in ``services/orders``, with the user's
    README line, next to another service's folder. Its git status hides untracked files, as
    large repositories often do."""
    root = tmp_path / "platform"
    project = root / MONOREPO_PROJECT
    render_release(template_repo, project, {"use_orm": False}, OLD)
    _replace(project / "README.md", README_OLD_LINE, USER_README_LINE)
    (root / OTHER_SERVICE_FILE).parent.mkdir(parents=True)
    (root / OTHER_SERVICE_FILE).write_text("# Billing\n", encoding="utf-8")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "config", "status.showUntrackedFiles", "no")
    commit_all(root, "Two services")
    (root / OTHER_SERVICE_DRAFT).write_text(DRAFT_TEXT, encoding="utf-8")
    return root


@pytest.mark.parametrize("hidden_by", ["repository", "command-line"])
def test_update_in_a_monorepo_changes_the_project_and_nothing_else(
    monorepo: Path, hidden_by: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = monorepo / MONOREPO_PROJECT
    with ExitStack() as hiding:
        if hidden_by == "command-line":  # as `git -c status.showUntrackedFiles=no` around kiln
            git(monorepo, "config", "--unset", "status.showUntrackedFiles")
            hidden = "'status.showuntrackedfiles=no'"
            monkeypatch.setenv("GIT_CONFIG_PARAMETERS", hidden)
            hiding.enter_context(local.env(GIT_CONFIG_PARAMETERS=hidden))  # Copier's git
            assert "??" not in git(monorepo, "status", "--porcelain")

        result = CliRunner().invoke(app, ["update", str(project)])

    assert result.exit_code == 1, result.output  # the README conflict is left to resolve
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        f"{OLD} -> {NEW}: changed 4",
        "  .copier-answers.yml",
        f"  {ADDED_FILE}",
        "  README.md",
        f"  src/{PACKAGE}/health/router.py",
    ]
    assert lines[lines.index("conflicts to resolve (1), marked inline:") + 1] == "  README.md"
    inside = MONOREPO_PROJECT.as_posix()
    assert changed_paths(monorepo) == [
        OTHER_SERVICE_DRAFT.as_posix(),
        f"{inside}/.copier-answers.yml",
        f"{inside}/{ADDED_FILE}",
        f"{inside}/README.md",
        f"{inside}/src/{PACKAGE}/health/router.py",
    ]
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.index(CONFLICT_MARKER) < readme.index(USER_README_LINE)
    assert readme.index(USER_README_LINE) < readme.index(README_NEW_LINE)
    assert LIVE_NEW_DOC in (project / "src" / PACKAGE / "health" / "router.py").read_text(
        encoding="utf-8"
    )
    assert (monorepo / OTHER_SERVICE_DRAFT).read_text(encoding="utf-8") == DRAFT_TEXT


def test_pretend_in_a_monorepo_reports_and_changes_nothing(monorepo: Path) -> None:
    before = snapshot(monorepo)
    head = git(monorepo, "rev-parse", "HEAD")

    result = CliRunner().invoke(app, ["update", str(monorepo / MONOREPO_PROJECT), "--pretend"])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{OLD} -> {NEW}: would change 4"
    assert f"  src/{PACKAGE}/health/router.py" in lines
    assert lines[lines.index("conflicts it would mark inline (1):") + 1] == "  README.md"
    assert snapshot(monorepo) == before
    assert git(monorepo, "rev-parse", "HEAD") == head
    assert changed_paths(monorepo) == [OTHER_SERVICE_DRAFT.as_posix()]


def _untracked_in_project(root: Path) -> None:
    # Hidden from a plain `git status` by the repository's showUntrackedFiles=no.
    (root / MONOREPO_PROJECT / "notes.md").write_text("mine\n", encoding="utf-8")


def _deleted_elsewhere(root: Path) -> None:
    # Copier applies the update through the whole repository: it would bring the file back.
    (root / OTHER_SERVICE_FILE).unlink()


def _sparse(root: Path) -> None:
    git(root, "sparse-checkout", "set", MONOREPO_PROJECT.as_posix())


def _leftover_rej(root: Path) -> None:
    # Copier would take it for a conflict of its own and reset the file beside it.
    (root / OTHER_SERVICE_FILE.with_suffix(".md.rej")).write_text("@@ -1 +1 @@\n", "utf-8")


def _ignored_project(root: Path) -> None:
    git(root, "rm", "-r", "--cached", "--quiet", MONOREPO_PROJECT.as_posix())
    (root / ".gitignore").write_text(f"/{MONOREPO_PROJECT.as_posix()}/\n", encoding="utf-8")
    commit_all(root, "Keep the orders service out of git")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (_untracked_in_project, "has uncommitted changes (1 path); commit or stash them first"),
        (_deleted_elsewhere, "has uncommitted changes outside the project (1 path, such as"),
        (_sparse, "is a sparse checkout; the update needs the whole work tree"),
        (_leftover_rej, "notes.md.rej is left from an earlier update"),
        (_ignored_project, "is not committed (its folder may be ignored by git)"),
    ],
    ids=["untracked-in-project", "deleted-elsewhere", "sparse", "leftover-rej", "ignored"],
)
def test_update_in_a_monorepo_refuses_what_it_could_not_undo(
    monorepo: Path, setup: RefusalSetup, message: str
) -> None:
    setup(monorepo)

    assert_refused(monorepo, monorepo / MONOREPO_PROJECT, message)


def test_an_update_that_stops_says_how_to_undo_it(monorepo: Path) -> None:
    project = monorepo / MONOREPO_PROJECT
    before = snapshot(monorepo)

    code, stderr = run_kiln("update", str(project), "--vcs-ref", "v9.9.9")

    assert code == 2
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("kiln: error: the update stopped: Unknown revision: 'v9.9.9'")
    assert stderr.rstrip().endswith(f"`{undo_command(project)}` undoes it")
    assert snapshot(monorepo) == before


def test_the_undo_command_restores_the_project_and_nothing_else(
    monorepo: Path, tmp_path: Path
) -> None:
    # What an update leaves at its worst: an unmerged file, new files and changed ones.
    project = monorepo / MONOREPO_PROJECT
    committed = snapshot(project)
    assert CliRunner().invoke(app, ["update", str(project)]).exit_code == 1
    assert "UU " in git(monorepo, "status", "--porcelain")

    # Given as the user gave it: relative, from a directory outside the repository.
    relative = project.relative_to(tmp_path)
    subprocess.run(undo_command(relative), shell=True, cwd=tmp_path, check=True)  # noqa: S602

    assert snapshot(project) == committed
    assert changed_paths(monorepo) == [OTHER_SERVICE_DRAFT.as_posix()]
    assert (monorepo / OTHER_SERVICE_DRAFT).read_text(encoding="utf-8") == DRAFT_TEXT
