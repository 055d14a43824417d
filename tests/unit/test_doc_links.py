"""The repository's documents only point inside the repository: every relative markdown link in README.md and
docs/*.md resolves to a file here (and a `#fragment` to a heading of that file), and nothing points at a design
kept outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests import REPO_ROOT

ROOT = REPO_ROOT
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
CODE_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto: ...


def links(document: Path) -> list[str]:
    text = CODE_FENCE.sub("", document.read_text(encoding="utf-8"))
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)


def anchors(document: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = CODE_FENCE.sub("", document.read_text(encoding="utf-8"))
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", "")).replace(" ", "-")
        found.add(slug)
    return found


def test_there_are_documents_and_links_to_check() -> None:
    assert ROOT / "README.md" in DOCUMENTS and ROOT / "docs" / "architecture.md" in DOCUMENTS
    assert any(links(d) for d in DOCUMENTS)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(document: Path) -> None:
    broken: list[str] = []
    for target in links(document):
        if EXTERNAL.match(target):
            continue
        path_part, _, fragment = target.partition("#")
        resolved = (document.parent / path_part).resolve() if path_part else document
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif not resolved.exists():
            broken.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading #{fragment} in {resolved.relative_to(ROOT)}")
    assert broken == []


def test_nothing_in_the_repository_points_at_the_shared_design_folder() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    needles = ("../shared", "/work/shared", "DESIGN.md", "DESIGN §")  # the design lives in docs/, in our own words
    offenders = []
    for name in tracked:
        path = ROOT / name
        if name == "tests/unit/test_doc_links.py" or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary files cannot carry a link
        offenders += [f"{name}: {needle}" for needle in needles if needle in text]
    assert offenders == []
