"""The data layer: the CheXpert schema and labels, images and their cache, splits, source datasets,
the real label files. Imports only cxrtransfer.errors and cxrtransfer.fileio."""
