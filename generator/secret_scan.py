"""No secret in a generated project: ``python -m generator.secret_scan PROJECT``.

Scans every file of the project, the answers file included, with detect-secrets' default
plugins (keys, tokens, passwords in code and config, high-entropy strings, private keys) and
exits 1 listing each finding. Left out: the project's own environments and caches, and
``tests/``, whose credentials are made up by the tests for the tests.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from detect_secrets.core.secrets_collection import SecretsCollection
from detect_secrets.settings import default_settings

#: Directories that are not the project's content.
SKIPPED = frozenset(
    {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__", "tests"}
)


def project_files(project: Path) -> Iterator[Path]:
    """The files a user commits: everything outside the skipped directories."""
    for path in sorted(project.rglob("*")):
        parts = path.relative_to(project).parts
        if path.is_file() and not SKIPPED.intersection(parts) and path.suffix != ".db":
            yield path


def findings(project: Path) -> list[str]:
    """``file:line: type`` for every secret found."""
    collection = SecretsCollection(root=str(project))
    with default_settings():
        for path in project_files(project):
            collection.scan_file(str(path.relative_to(project)))
    return sorted(
        f"{filename}:{secret.line_number}: {secret.type}" for filename, secret in collection
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    project = Path(args[0] if args else ".").resolve()
    if not project.is_dir():
        print(f"secret_scan: {project} is not a directory", file=sys.stderr)
        return 2
    found = findings(project)
    for line in found:
        print(line)
    scanned = sum(1 for _ in project_files(project))
    print(
        f"{len(found)} secret(s) in {scanned} files" if found else f"no secret in {scanned} files"
    )
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
