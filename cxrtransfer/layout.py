"""The model folder's layout: the file names a train stage writes and the study stages read."""

MODEL_FILE = "model.json"              # what was trained: arch, init, family, truncate, params, configuration
CHECKPOINTS_FOLDER = "checkpoints"     # the kept checkpoints (safetensors)


def predictions_file(split: str) -> str:
    """The kept checkpoints' predictions on a split ("valid", "test")."""
    return f"{split}_predictions.csv"
