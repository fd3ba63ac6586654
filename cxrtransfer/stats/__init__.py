"""The statistics layer: AUROC, the bootstrap, significance, the paper's comparisons and correlations, and
the paper's settings and figures. Imports the data layer and the base modules."""
