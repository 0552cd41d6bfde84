"""A griffe extension for the API reference: graceful's docstrings are written in
reStructuredText, and mkdocstrings renders Markdown. It turns the few reST forms they
use into Markdown before rendering: roles (:class:`Supervisor`) become code spans,
and ``.. code-block:: python`` and ``::`` literal blocks become fenced blocks. A
docstring whose source has a backslash escape (an example's ``"\\n"``) is taken as
written, so the example shows the escape rather than a line break."""

from __future__ import annotations

import inspect
import re
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|attr|exc|data|mod|obj):`~?([^`]+)`")


def markdown(text: str) -> str:
    lines = ROLE.sub(r"`\1`", text).split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        directive = re.fullmatch(r"\.\. code-block::\s*(\w*)", stripped)
        literal = not directive and stripped.endswith("::") and not stripped.startswith("..")
        if not (directive or literal):
            out.append(line)
            i += 1
            continue
        if directive:
            language = directive.group(1) or "python"
        else:
            language = "python"
            out.append(line[:-1])  # "for example::" reads "for example:"
        indent = len(line) - len(line.lstrip())
        i += 1
        block: list[str] = []
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
        ):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():
            block.pop()
        body = textwrap.dedent("\n".join(block)).strip("\n")
        pad = " " * indent
        out += ["", pad + "```" + language]
        out += [pad + code if code else "" for code in body.split("\n")]
        out += [pad + "```", ""]
    return "\n".join(out)


def as_written(docstring: Any) -> str:
    """The docstring's text as in the source, for a plain literal with a backslash."""
    try:
        source = docstring.source.strip()
    except Exception:  # no source to read (a compiled module, say)
        return str(docstring.value)
    for quotes in ('"""', "'''"):
        if source.startswith(quotes) and source.endswith(quotes) and "\\" in source:
            body = source[len(quotes) : -len(quotes)].replace("\\\\", "\\")
            return inspect.cleandoc(body)
    return str(docstring.value)


class RstToMarkdown(griffe.Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(as_written(obj.docstring))
