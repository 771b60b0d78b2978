"""mkdocs hooks of the documentation site (mkdocs.yml names this file).

- Navigation entries whose page does not exist (yet) are dropped, so that a page
  being written elsewhere can have its slot in mkdocs.yml while the site still
  builds with ``--strict``.
- Links from a page to a file of the repository outside docs/ (``../benchmarks/
  RESULTS.md``, ``../examples/notebook.ipynb``) are checked: a missing file fails the
  build like a broken page link. The files join the site under ``_repository/`` (a
  Markdown file as a page of its own, outside the navigation) and the links point
  there, so that they work offline too.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Dict, List

from mkdocs.structure.files import File, InclusionLevel

log = logging.getLogger("mkdocs.plugins.checkpointing")
_LINK = re.compile(r"\]\((\.\./[^)#\s]+)")
_REPOSITORY = "_repository"


def _existing(entries: List[Any], docs_dir: str) -> List[Any]:
    kept = []
    for entry in entries:
        if isinstance(entry, dict):
            ((title, value),) = entry.items()
            if isinstance(value, list):
                value = _existing(value, docs_dir)
                if value:
                    kept.append({title: value})
            elif os.path.exists(os.path.join(docs_dir, value)):
                kept.append(entry)
            else:
                log.info("not in the navigation yet (no docs/%s)", value)
        elif os.path.exists(os.path.join(docs_dir, entry)):
            kept.append(entry)
    return kept


def on_config(config: Any) -> Any:
    if config.nav:
        config.nav = _existing(config.nav, config.docs_dir)
    return config


def _outside_links(config: Any) -> Dict[str, str]:
    """Each link from a page to ``../something``: the file of the repository it names,
    relative to the repository root."""
    docs = os.path.abspath(config.docs_dir)
    root = os.path.dirname(docs)
    found: Dict[str, str] = {}
    for folder, _, names in os.walk(docs):
        for name in names:
            if not name.endswith(".md"):
                continue
            page = os.path.join(folder, name)
            with open(page, encoding="utf-8") as handle:
                text = handle.read()
            for link in _LINK.findall(text):
                target = os.path.normpath(os.path.join(folder, link))
                relative = os.path.relpath(target, root)
                if target.startswith(docs + os.sep) or relative.startswith(".."):
                    continue
                if os.path.isfile(target):
                    found[relative] = target
                else:
                    log.warning(
                        "%s links to %s, which is not a file of the repository",
                        os.path.relpath(page, docs),
                        link,
                    )
    return found


def on_files(files: Any, config: Any) -> Any:
    for relative, target in sorted(_outside_links(config).items()):
        files.append(
            File.generated(
                config,
                f"{_REPOSITORY}/{relative}",
                abs_src_path=target,
                inclusion=InclusionLevel.NOT_IN_NAV,
            )
        )
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri.startswith(_REPOSITORY + "/"):
        return markdown
    docs = os.path.abspath(config.docs_dir)
    root = os.path.dirname(docs)
    page_dir = os.path.dirname(os.path.join(docs, page.file.src_uri))

    def rewrite(match: "re.Match[str]") -> str:
        target = os.path.normpath(os.path.join(page_dir, match.group(1)))
        relative = os.path.relpath(target, root)
        if target.startswith(docs + os.sep) or not os.path.isfile(target):
            return match.group(0)
        moved = os.path.join(docs, _REPOSITORY, relative)
        return "](" + os.path.relpath(moved, page_dir).replace(os.sep, "/")

    return _LINK.sub(rewrite, markdown)
