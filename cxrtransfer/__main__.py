"""`python -m cxrtransfer`: the `cxrtransfer` command."""

from .lab.cli import entry

entry()
