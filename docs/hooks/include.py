"""MkDocs hook: ``<!-- include: PATH -->`` on a line of its own is replaced by the file at PATH
(relative to the repository's top, where mkdocs.yml is), so hardware.md stays at the top level and
is still a page of the site. Relative links in the included file are re-aimed from its folder to
the page's; a missing file, or a link leaving the docs folder, fails the build. The runnable-block
markers (``<!-- runnable -->``, ``<!-- output -->``, ``<!-- not runnable: ... -->``, see
docs/design/docs.md) are dropped: an HTML comment inside a list item would end the list.
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any

from mkdocs.exceptions import PluginError

INCLUDE = re.compile(r"^<!-- include: (\S+) -->[ \t]*$", re.M)
MARKER = re.compile(r"^[ \t]*<!-- (?:runnable|output|not runnable: .*?) -->[ \t]*\n", re.M)
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def _rebase(text: str, source_dir: str, page_dir: str, docs_dir: str, name: str) -> str:
    def fix(m: re.Match[str]) -> str:
        target, anchor = m.group(1), m.group(2) or ""
        if re.match(r"^[a-z]+:", target):  # http:, mailto:
            return m.group(0)
        where = os.path.normpath(os.path.join(source_dir, target))
        if os.path.commonpath([where, docs_dir]) != docs_dir:
            raise PluginError(f"{name}: link {target!r} points outside the docs folder")
        return f"]({posixpath.relpath(where, page_dir).replace(os.sep, '/')}{anchor})"

    return LINK.sub(fix, text)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    top = os.path.dirname(os.path.abspath(config.config_file_path))
    docs_dir = os.path.abspath(config.docs_dir)
    page_dir = os.path.dirname(os.path.join(docs_dir, page.file.src_path))

    def include(m: re.Match[str]) -> str:
        path = os.path.join(top, m.group(1))
        if not os.path.isfile(path):
            raise PluginError(f"{page.file.src_path}: include {m.group(1)!r}: no such file")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return _rebase(text, os.path.dirname(path), page_dir, docs_dir, m.group(1))

    return MARKER.sub("", INCLUDE.sub(include, markdown))
