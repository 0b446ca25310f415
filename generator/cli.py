"""The `kiln` command: a thin layer over Copier's Python API.

Every flag that names a feature is built from copier.yml at start-up, so a new toggle in
copier.yml becomes a new `kiln new` flag without a change here.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table
from typer._click.exceptions import ClickException  # Typer vendors click since 0.29

from generator.options import (
    Combination,
    OptionError,
    Options,
    flag_name,
    load_options,
)
from generator.project import (
    Outcome,
    RenderError,
    message_after_copy,
    missing_tools,
    render,
    run_all,
    tail,
)
from generator.update import (
    UpdateError,
    UpdateStopped,
    project_status,
    recorded_features,
    summarize,
    update_project,
)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class KilnError(Exception):
    """A problem the user can fix; shown as one line, exit code 2."""


class KilnGroup(typer.core.TyperGroup):
    """Shows every problem the user can fix as one line on stderr, with exit code 2."""

    def main(  # type: ignore[override]
        self, args: list[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        extra.pop("standalone_mode", None)
        try:
            code = super().main(
                args=args, prog_name=prog_name or "kiln", standalone_mode=False, **extra
            )
        except typer.Abort:
            err.print("kiln: error: aborted; nothing was written")
            sys.exit(130)
        except ClickException as exc:
            err.print(f"kiln: error: {exc.format_message()}", markup=False)
            sys.exit(exc.exit_code)
        except (KilnError, OptionError) as exc:
            err.print(f"kiln: error: {exc}", markup=False)
            sys.exit(2)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="kiln",
    cls=KilnGroup,
    help="Render production FastAPI services from the Kiln template, and prove every "
    "combination of its options works.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


# --- kiln new ----------------------------------------------------------------------------


#: How Copier names the question whose answer failed its validator.
_FAILED_QUESTION = re.compile(r"Validation error for question '(\w+)'")


def _answer_hint(error: RenderError, answers: dict[str, Any]) -> str:
    """Where a default derived from another answer (a long name's package, say) fails its rule,
    how to give that answer instead."""
    failed = _FAILED_QUESTION.search(str(error))
    if failed is None or failed[1] in answers:
        return ""
    return f"; give it with --data {failed[1]}=VALUE"


def new(
    dest: Path,
    name: str | None,
    defaults: bool,
    data: list[str] | None,
    **features: Any,
) -> None:
    """Create a new service in DEST (an empty or new directory).

    Feature flags and --data answer questions up front; Copier asks the rest, unless
    --defaults takes every default.
    """
    options = load_options()
    answers = options.parse_assignments(data or [])
    for question in (*options.toggles, *options.variants):
        value = features.get(question.name)
        if value is None:
            continue
        if question.name in answers and answers[question.name] != value:
            raise KilnError(
                f"--{flag_name(question)} contradicts --data {question.name}="
                f"{_str(answers[question.name])}; give one of them"
            )
        answers[question.name] = value
    for variant in options.variants:
        toggle = variant.toggle or ""
        if variant.name in answers and answers.get(toggle) is False:
            raise KilnError(
                f"--{flag_name(variant)} needs {toggle}; drop --no-{flag_name(options[toggle])}"
            )
    if name is not None:
        if "project_name" in answers and answers["project_name"] != name:
            raise KilnError("--name contradicts --data project_name; give one of them")
        answers["project_name"] = name
    if defaults and "project_name" not in answers:
        answers["project_name"] = dest.resolve().name

    _check_destination(dest)
    if not defaults and not sys.stdin.isatty():
        raise KilnError("no terminal to ask the questions on; pass --defaults (with flags/--data)")
    created = not dest.exists()
    try:
        recorded = render(dest, answers, defaults=defaults)
    except (RenderError, KeyboardInterrupt) as exc:
        if created and dest.exists():
            shutil.rmtree(dest)
        if isinstance(exc, KeyboardInterrupt):
            raise KilnError("interrupted; nothing was written") from None
        raise KilnError(f"{exc}{_answer_hint(exc, answers)}; nothing was written") from None
    features_on = [flag_name(t) for t in options.toggles if recorded.get(t.name)]
    out.print(
        f"[bold green]Created[/] {recorded.get('project_name')} in {dest} "
        f"({', '.join(features_on) or 'no optional features'})"
    )
    out.print(message_after_copy(recorded, dest), markup=False)


def _check_destination(dest: Path) -> None:
    if dest.exists():
        if not dest.is_dir():
            raise KilnError(f"{dest} exists and is not a directory; choose a new path")
        if any(dest.iterdir()):
            raise KilnError(f"{dest} is not empty; choose a new or empty directory")
        if not os.access(dest, os.W_OK):
            raise KilnError(f"{dest} is not writable; choose a directory you can write to")
        return
    parent = dest.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise KilnError(f"cannot create {dest}: {parent} is not a directory")
    if not os.access(parent, os.W_OK):
        raise KilnError(f"cannot create {dest}: {parent} is not writable")


def _new_signature(options: Options) -> inspect.Signature:
    """`kiln new`'s parameters: the fixed ones and one flag per toggle and variant."""
    fixed = [
        inspect.Parameter(
            "dest",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[Path, typer.Argument(help="Where to create the service.")],
        ),
        inspect.Parameter(
            "name",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None, typer.Option("--name", help="Project name (default: asked).")
            ],
        ),
    ]
    feature_params = []
    for toggle in options.toggles:
        flag = flag_name(toggle)
        feature_params.append(
            inspect.Parameter(
                toggle.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    bool | None,
                    typer.Option(f"--{flag}/--no-{flag}", help=toggle.help, show_default=False),
                ],
            )
        )
    for variant in options.variants:
        feature_params.append(
            inspect.Parameter(
                variant.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    _choice_type(variant.choices) | None,
                    typer.Option(f"--{flag_name(variant)}", help=variant.help, show_default=False),
                ],
            )
        )
    trailing = [
        inspect.Parameter(
            "defaults",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[
                bool, typer.Option("--defaults", help="Take the default for every question.")
            ],
        ),
        inspect.Parameter(
            "data",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                list[str] | None,
                typer.Option(
                    "--data", "-d", metavar="KEY=VALUE", help="Answer any question (repeatable)."
                ),
            ],
        ),
    ]
    return inspect.Signature([*fixed, *feature_params, *trailing])


def _choice_type(choices: tuple[str, ...]) -> Any:
    """A ``Literal`` of the choices, which Typer shows and checks as a choice."""
    return Literal.__getitem__(choices)


def _register_new(options: Options) -> None:
    def new_command(**kwargs: Any) -> None:
        new(**kwargs)

    new_command.__doc__ = new.__doc__
    new_command.__signature__ = _new_signature(options)  # type: ignore[attr-defined]
    app.command("new")(new_command)


# --- kiln options / matrix ---------------------------------------------------------------


@app.command("options")
def options_command(
    output: Annotated[
        Literal["table", "json"], typer.Option("--format", help="Output format.")
    ] = "table",
) -> None:
    """List the template's questions, choices and defaults (read from copier.yml)."""
    questions = load_options().asked
    if output == "json":
        rows = [
            {
                "name": q.name,
                "type": q.type,
                "default": q.default,
                "choices": list(q.choices),
                "asked_when": q.toggle,
                "help": q.help,
            }
            for q in questions
        ]
        out.print_json(json.dumps(rows))
        return
    table = Table("option", "flag", "type", "default", "choices", "help", title="kiln options")
    for q in questions:
        kiln_flag = ""
        if q.type == "bool":
            kiln_flag = f"--{flag_name(q)}/--no-{flag_name(q)}"
        elif q.toggle:
            kiln_flag = f"--{flag_name(q)}"
        elif q.name == "project_name":
            kiln_flag = "--name"
        default = "(derived)" if q.templated_default else ("" if q.default is None else q.default)
        when = f" (when {q.toggle})" if q.toggle else ""
        table.add_row(q.name, kiln_flag, q.type, str(default), " / ".join(q.choices), q.help + when)
    out.print(table)


@app.command("matrix")
def matrix_command(
    output: Annotated[
        Literal["table", "json", "github"],
        typer.Option(
            "--format", help="github prints a strategy.matrix object with an include list."
        ),
    ] = "table",
) -> None:
    """List every valid combination of the feature toggles."""
    options = load_options()
    combos = options.combinations()
    if output == "json":
        print(json.dumps([{"key": c.key, **c.data} for c in combos], indent=2))
        return
    if output == "github":
        include = [
            {"key": c.key, "combo": ",".join(f"{k}={_str(v)}" for k, v in c.data.items())}
            for c in combos
        ]
        print(json.dumps({"include": include}, separators=(",", ":")))
        return
    names = [q.name for q in (*options.toggles, *options.variants)]
    table = Table(title=f"{len(combos)} combinations")
    table.add_column("key", overflow="fold")
    for name in names:
        table.add_column(name.removeprefix("use_"), overflow="fold")
    for c in combos:
        data = c.data
        table.add_row(c.key, *(_str(data[n]) if n in data else "-" for n in names))
    out.print(table)


def _str(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# --- kiln verify -------------------------------------------------------------------------


@app.command("verify")
def verify_command(
    all_: Annotated[bool, typer.Option("--all", help="Every combination.")] = False,
    combo: Annotated[
        list[str] | None,
        typer.Option(
            "--combo",
            metavar="KEY=VALUE|KEY",
            help="A toggle answer (together they make one combination, the rest at their "
            "defaults) or a combination key from `kiln matrix`. Repeatable.",
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Combinations at once.")] = (
        os.cpu_count() or 1
    ),
    keep: Annotated[
        Path | None,
        typer.Option("--keep", help="Keep the rendered projects (and all logs) in this directory."),
    ] = None,
    log_dir: Annotated[
        Path, typer.Option("--log-dir", help="Where the log of each failed combination is kept.")
    ] = Path(".kiln/logs"),
    load: Annotated[
        bool,
        typer.Option(
            "--load",
            help="Also put each server under load: 200 HTTP clients for 20 s, and with "
            "websockets 500 members in one room.",
        ),
    ] = False,
) -> None:
    """Render combinations, install each into its own environment and run its gates
    (ruff, ruff format --check, the security checks, mypy --strict, pytest with the coverage
    gate, the API fuzzing of a real server; with the ORM, the migrations up, down, up again
    and alembic check; with Docker, the image's lint, schema and rehearsal)."""
    options = load_options()
    combos = _select(options, all_=all_, combo=combo or [])
    if missing := missing_tools(combos):
        raise KilnError(
            f"kiln verify needs {', '.join(missing)}; install them with "
            "pip install 'fastapi-kiln[verify]'"
        )
    workdir = keep.resolve() if keep else Path(tempfile.mkdtemp(prefix="kiln-verify-"))
    if keep:
        workdir.mkdir(parents=True, exist_ok=True)
    logs = (keep / "logs") if keep else log_dir
    logs = logs.resolve()
    running: set[str] = set()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]verify"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=len(combos))

        def started(c: Combination) -> None:
            running.add(c.key)

        def done(o: Outcome) -> None:
            running.discard(o.key)
            mark = "[green]ok[/]" if o.ok else f"[red]failed at {o.failed_gate}[/]"
            progress.console.print(f"{o.key}: {mark} ({o.seconds:.0f} s)")
            progress.update(task, advance=1, description=", ".join(sorted(running))[:60])

        try:
            outcomes = run_all(
                combos,
                workdir,
                jobs=min(jobs, len(combos)),
                log_dir=logs,
                on_start=started,
                on_done=done,
                load=load,
            )
        finally:
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)
    for outcome in outcomes:
        if outcome.ok and not keep:
            outcome.log.unlink(missing_ok=True)
    _summary(outcomes)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        first = failed[0]
        err.print(f"\n[bold]{first.key}[/] failed at {first.failed_gate}; end of its log:")
        err.print(tail(first.log), markup=False, highlight=False)
        raise typer.Exit(1)


def _select(options: Options, *, all_: bool, combo: list[str]) -> list[Combination]:
    if all_ and combo:
        raise KilnError("--all and --combo contradict each other; give one of them")
    if all_:
        return options.combinations()
    if not combo:
        raise KilnError("nothing to verify; pass --all or --combo KEY=VALUE (see `kiln matrix`)")
    by_key = {c.key: c for c in options.combinations()}
    chosen: list[Combination] = []
    assignments = [c for c in combo if "=" in c]
    for key in (c for c in combo if "=" not in c):
        if key not in by_key:
            raise KilnError(f"{key!r} is not a combination key; `kiln matrix` lists them")
        chosen.append(by_key[key])
    if assignments:
        chosen.append(options.combination(options.parse_assignments(assignments)))
    return list(dict.fromkeys(chosen))


def _summary(outcomes: list[Outcome]) -> None:
    table = Table(title="kiln verify")
    table.add_column("combination", overflow="fold")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    table.add_column("log", overflow="fold")
    for o in outcomes:
        result = "[green]passed[/]" if o.ok else f"[red]failed at {o.failed_gate}[/]"
        table.add_row(o.key, result, f"{o.seconds:.1f}", "" if o.ok else str(o.log))
    out.print(table)
    passed = sum(o.ok for o in outcomes)
    out.print(f"{passed} passed, {len(outcomes) - passed} failed")


# --- kiln update / status ---------------------------------------------------------------

ProjectPath = Annotated[
    Path, typer.Argument(help="The generated project (default: the current directory).")
]


@app.command("update")
def update_command(
    path: ProjectPath = Path(),
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            "-d",
            metavar="KEY=VALUE",
            help="Change an answer, e.g. use_websockets=true (repeatable).",
        ),
    ] = None,
    vcs_ref: Annotated[
        str | None,
        typer.Option("--vcs-ref", help="Update to this tag or commit (default: newest release)."),
    ] = None,
    pretend: Annotated[
        bool, typer.Option("--pretend", help="Show what would change; change nothing.")
    ] = False,
) -> None:
    """Take the template's newer version, or changed answers, into a generated project.

    The project (its own git repository or a folder of a larger one) must have no uncommitted
    changes. Your edits are kept; where they overlap the template's changes, both sides are
    written inline between conflict markers, and the exit code is 1 until you resolve them.
    """
    options = load_options()
    changes = options.parse_assignments(data or [])
    try:
        report = update_project(path, options, changes, vcs_ref=vcs_ref, pretend=pretend)
    except UpdateStopped as exc:
        raise KilnError(str(exc)) from None
    except UpdateError as exc:
        raise KilnError(f"{exc}; nothing was changed") from None
    for line in summarize(report):
        out.print(line, markup=False)
    if report.conflicts and not report.pretend:
        # Like `git merge`: applied, but not finished until a person resolves the conflicts.
        out.print("Resolve the conflict markers, then review with `git diff` and commit.")
        raise typer.Exit(1)
    if not report.pretend and report.changed:
        out.print("Review with `git diff`, run the tests, and commit.")


@app.command("status")
def status_command(path: ProjectPath = Path()) -> None:
    """Tell a project's template version, whether a newer one exists, and its features."""
    options = load_options()
    try:
        status = project_status(path, options)
    except UpdateError as exc:
        raise KilnError(str(exc)) from None
    answers = status.answers
    out.print(f"project:   {answers.get('project_name')} ({path})", markup=False)
    out.print(f"template:  {status.source}", markup=False)
    if status.latest is None:
        newest = "no release found (cannot reach the template, or it has no version tags)"
    elif status.outdated:
        newest = f"{status.latest} is newer: run `kiln update`"
    else:
        newest = "up to date"
    out.print(f"version:   {status.version} ({newest})", markup=False)
    on = recorded_features(answers, options)
    off = [flag_name(t) for t in options.toggles if not status.features[t.name]]
    out.print(f"features:  {', '.join(on) or 'none'}", markup=False)
    out.print(f"off:       {', '.join(off) or 'none'}", markup=False)


# --- entry point -------------------------------------------------------------------------

_register_new(load_options())


def main() -> None:
    """The `kiln` console script."""
    app()
