"""`python -m cxrtransfer.lab`: the `cxrtransfer` command."""

from .cli import entry

entry()
