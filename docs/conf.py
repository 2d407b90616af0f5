"""Sphinx configuration of eosfast's documentation (built with -W: warnings are errors)."""

import re

import eosfast

project = "eosfast"
author = "the eosfast developers"
copyright = "the eosfast developers"
release = eosfast.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# quickstart.md is part of index.md (an {include}), not a page of its own.
exclude_patterns = ["_build", "quickstart.md"]

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False}
# numpydoc writes the members' tables itself; autosummary's per-class stubs would repeat them.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Types in the Parameters sections are prose ("ndarray (dim,)"), not cross-references.
numpydoc_xref_param_type = False

myst_heading_anchors = 3
# README-style pages link to files of the repository (tests/, src/) that are not pages here.
suppress_warnings = ["myst.xref_missing"]

html_theme = "alabaster"
html_static_path = []
html_title = f"eosfast {release}"


# The docstrings write their mathematics as plain text (|grad L|, |x_t - Phi(x_t)|), which reST
# would read as substitution references: escape "|" outside inline literals, doctests and
# literal blocks, after numpydoc has turned the sections into reST.
_LITERAL = re.compile(r"(``.*?``)")


def _escape_bars(line: str) -> str:
    parts = _LITERAL.split(line)
    return "".join(p if p.startswith("``") else p.replace("|", "\\|") for p in parts)


def _plain_bars(app, what, name, obj, options, lines):
    in_doctest = in_literal = False
    literal_indent = 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if in_doctest:
            if not stripped:
                in_doctest = False
            continue
        if stripped.startswith(">>>"):
            in_doctest = True
            continue
        if in_literal:
            if stripped and indent <= literal_indent:
                in_literal = False
            else:
                continue
        if stripped.endswith("::"):
            in_literal, literal_indent = True, indent
        lines[i] = _escape_bars(line)


def setup(app):
    app.connect("autodoc-process-docstring", _plain_bars, priority=600)
