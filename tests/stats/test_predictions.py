"""The reference scoring order (CheXpert predict/predict.py) on hand-made examples where it differs from
averaging checkpoints per image first."""

from __future__ import annotations

import pandas as pd
import pytest

from cxrtransfer.errors import InputError
from cxrtransfer.stats import predictions

NEG, POS = "Cardiomegaly:negative_logit", "Cardiomegaly:positive_logit"


def _rows() -> pd.DataFrame:
    # Study s1 has two views (a, b), two checkpoints (10, 20). Study s2 has one view.
    return pd.DataFrame({
        "checkpoint": [10, 10, 20, 20, 10, 20],
        "path": ["a", "b", "a", "b", "c", "c"],
        "patient": ["p1", "p1", "p1", "p1", "p2", "p2"],
        "study": ["s1", "s1", "s1", "s1", "s2", "s2"],
        "Edema": [0.9, 0.1, 0.2, 0.6, 0.5, 0.7],
        # U-MultiClass: the stored probability is softmax(neg, pos)[pos] of the row's own logits
        "Cardiomegaly": [0.7310585786300049, 0.3775406687981454, 0.5, 0.5, 0.5, 0.5],
        NEG: [2.0, 4.0, 0.0, 0.0, 1.0, 1.0],
        POS: [3.0, 3.5, 0.0, 0.0, 1.0, 1.0],
    })


def test_reference_order_differs_from_averaging_checkpoints_per_image_first():
    scores = predictions.reference_study_scores(_rows(), ["Edema", "Cardiomegaly"])
    # Edema, s1: per checkpoint max over views 0.9 and 0.6, mean 0.75 (per image first: max(0.55, 0.35) = 0.55)
    assert scores.loc["s1", "Edema"] == pytest.approx(0.75, abs=1e-12)
    assert scores.loc["s2", "Edema"] == pytest.approx(0.6, abs=1e-12)
    # Cardiomegaly, s1: checkpoint 10 takes max(2, 4) = 4 and max(3, 3.5) = 3.5, sigmoid(-0.5) = 0.37754...;
    # checkpoint 20 gives 0.5; mean 0.43877... (max of the views' probabilities would give 0.73106 and 0.5)
    assert scores.loc["s1", "Cardiomegaly"] == pytest.approx((0.3775406687981454 + 0.5) / 2, abs=1e-12)


def test_study_predictions_use_the_reference_order_and_keep_the_patient():
    rows = _rows()
    test = rows.loc[rows["checkpoint"] == 10, ["path", "patient", "study"]].reset_index(drop=True)
    per_study, n = predictions.study_predictions(rows, test, ["Edema", "Cardiomegaly"], "x.csv")
    assert n == 2 and list(per_study["study"]) == ["s1", "s2"] and list(per_study["patient"]) == ["p1", "p2"]
    assert per_study["Edema"].tolist() == pytest.approx([0.75, 0.6], abs=1e-12)


def test_predictions_file_with_one_logit_column_is_an_input_error(tmp_path):
    rows = _rows().drop(columns=[NEG])
    rows.to_csv(tmp_path / "test_predictions.csv", index=False)
    with pytest.raises(InputError, match="negative_logit"):
        predictions.read_predictions(tmp_path, ["Edema", "Cardiomegaly"])
    rows = _rows().astype({POS: object})
    rows.loc[3, POS] = "high"
    rows.to_csv(tmp_path / "test_predictions.csv", index=False)
    with pytest.raises(InputError, match="row 5"):
        predictions.read_predictions(tmp_path, ["Edema", "Cardiomegaly"])
    _rows().to_csv(tmp_path / "test_predictions.csv", index=False)
    assert list(predictions.read_predictions(tmp_path, ["Edema", "Cardiomegaly"]).columns)[-2:] == [NEG, POS]
