"""The model folder's layout: the file names a train stage writes and the study stages read."""

MODEL_FILE = "model.json"              # what was trained: arch, init, family, truncate, params, configuration
CHECKPOINTS_FOLDER = "checkpoints"     # the kept checkpoints (safetensors)


def predictions_file(split: str) -> str:
    """The kept checkpoints' predictions on a split ("valid", "test")."""
    return f"{split}_predictions.csv"


def logit_columns(task: str) -> tuple[str, str]:
    """A U-MultiClass task's (negative, positive) logit columns in a predictions file: the reference scoring
    takes their max over a study's views before the softmax (a binary task's probability column suffices:
    the sigmoid is monotone, so the max over views commutes with it)."""
    return f"{task}:negative_logit", f"{task}:positive_logit"
