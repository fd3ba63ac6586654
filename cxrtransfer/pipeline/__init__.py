"""The pipeline layer: params (schema, typed settings, CLI helpers) and the grid the params declare.
Imports the science layers (data, models, stats, training, report), never the lab layer."""
