"""The models layer: the architecture table, building and truncating timm models, input normalization
per initialization, weights in and out (safetensors). Imports the data layer and the base modules."""
