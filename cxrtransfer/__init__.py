"""cxrtransfer: the CheXtransfer study as a data-versioned DVC pipeline."""

__version__ = "0.1.0"
