"""Sphinx configuration of eosfast's documentation (built with -W: warnings are errors)."""

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
exclude_patterns = ["_build", "api/generated/*.examples"]

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
