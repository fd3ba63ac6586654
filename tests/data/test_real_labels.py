"""The CheXpert data layer on the REAL CheXpert-v1.0-small train.csv that torchxrayvision ships.

Every expected figure is counted here independently, with plain pandas string comparisons on the raw
cells of the .csv.gz, never with cxrtransfer's own parsing.
"""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cxrtransfer.data import real_labels
from cxrtransfer.data.chexpert import OBSERVATIONS, POLICIES, policy_targets, read_labels
from cxrtransfer.data.splits import SPLITS, make_split
from cxrtransfer.errors import InputError

REAL_PATH = real_labels.real_chexpert_labels_path()
needs_real = pytest.mark.skipif(
    REAL_PATH is None, reason="torchxrayvision (test extra) not installed: real CheXpert labels unavailable")

# The published size of CheXpert-v1.0-small's train.csv: a truncated or different packaged file fails here.
PUBLISHED = {"rows": 223_414, "patients": 64_540, "studies": 187_641, "frontal": 191_027}
FRACTIONS = {"train": 0.75, "valid": 0.10, "test": 0.15}

# Raw cell strings, as codes; every cell must be one of these four.
CELL_CODES = {"1.0": 0, "0.0": 1, "-1.0": 2, "": 3}
# What each raw cell must become under each policy: a positive, negative or class-2 target, or masked.
# Written out by hand from the CheXpert paper's policies, not derived from policy_targets.
POS, NEG, CLASS2, MASKED, OTHER = range(5)
OUTCOME_NAMES = ("pos", "neg", "class2", "masked", "other")
UNCERTAIN_OUTCOME = {"ignore": MASKED, "zeros": NEG, "ones": POS, "multiclass": CLASS2}


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """The real file's cells as strings, read with plain pandas (blank stays '')."""
    return pd.read_csv(REAL_PATH, compression="gzip", dtype=str, keep_default_na=False, na_values=[])


@pytest.fixture(scope="module")
def raw_codes(raw) -> np.ndarray:
    """N x 14 codes of the raw label strings (CELL_CODES; -1 for anything else)."""
    return np.stack([raw[name].map(CELL_CODES).fillna(-1).to_numpy(dtype=np.int8) for name in OBSERVATIONS], axis=1)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return read_labels(REAL_PATH)


def expected_outcomes(codes: np.ndarray, policy: str, blank_as_negative: bool) -> np.ndarray:
    by_code = np.array([POS, NEG, UNCERTAIN_OUTCOME[policy], NEG if blank_as_negative else MASKED])
    return by_code[codes]


def actual_outcomes(targets: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.full(targets.shape, OTHER, dtype=np.int8)
    unmasked = mask == 1.0
    out[unmasked & (targets == 1.0)] = POS
    out[unmasked & (targets == 0.0)] = NEG
    out[unmasked & (targets == 2.0)] = CLASS2
    out[mask == 0.0] = MASKED
    return out


def outcome_counts(outcomes: np.ndarray) -> dict[str, int]:
    return dict(zip(OUTCOME_NAMES, np.bincount(outcomes, minlength=len(OUTCOME_NAMES)).tolist()))


@needs_real
def test_raw_cells_are_only_the_four_chexpert_values(raw_codes):
    # The counts below partition every cell into 1 / 0 / -1 / blank: make sure nothing else exists.
    assert (raw_codes >= 0).all()


@needs_real
def test_index_counts_match_plain_pandas(raw, table):
    parts = raw["Path"].str.split("/")
    patients = parts.str[2]
    studies = patients + "/" + parts.str[3]
    counted = {"rows": len(raw), "patients": patients.nunique(), "studies": studies.nunique(),
               "frontal": int((raw["Frontal/Lateral"] == "Frontal").sum())}
    assert counted == PUBLISHED
    lateral = int((raw["Frontal/Lateral"] == "Lateral").sum())
    assert lateral == len(raw) - counted["frontal"]

    assert len(table) == counted["rows"]
    assert table["path"].tolist() == raw["Path"].tolist()  # row order kept: labels line up with raw cells
    assert table["patient"].nunique() == counted["patients"]
    assert table["study"].nunique() == counted["studies"]
    assert (table["patient"] == patients).all() and (table["study"] == studies).all()
    assert int(table["frontal"].sum()) == counted["frontal"]
    assert int((~table["frontal"]).sum()) == lateral
    assert set(table["source_split"]) == {"train"}


@needs_real
def test_real_metadata_quirks_are_kept_not_rejected(raw, table):
    # AP/PA holds LL / RL on a few frontal rows, Sex has 'Unknown', laterals have a blank AP/PA.
    assert table["ap_pa"].value_counts().to_dict() == raw["AP/PA"].value_counts().to_dict()
    assert table["sex"].value_counts().to_dict() == raw["Sex"].value_counts().to_dict()
    assert {"LL", "RL"} <= set(table["ap_pa"]) and "Unknown" in set(table["sex"])
    np.testing.assert_array_equal(table["age"].to_numpy(), raw["Age"].astype(int).to_numpy())


@needs_real
@pytest.mark.parametrize("observation", OBSERVATIONS)
def test_raw_label_counts_per_observation(raw, table, observation):
    cells = raw[observation]
    expected = {"1": int((cells == "1.0").sum()), "0": int((cells == "0.0").sum()),
                "-1": int((cells == "-1.0").sum()), "blank": int((cells == "").sum())}
    values = table[observation].to_numpy()
    got = {"1": int((values == 1.0).sum()), "0": int((values == 0.0).sum()),
           "-1": int((values == -1.0).sum()), "blank": int(np.isnan(values).sum())}
    assert got == expected
    assert sum(got.values()) == len(raw)


@needs_real
@pytest.mark.parametrize("blank_as_negative", [True, False])
@pytest.mark.parametrize("policy", list(POLICIES) + ["mixed"])
def test_policy_target_counts_per_observation(raw_codes, table, policy, blank_as_negative):
    # "mixed": a different policy per column, so a policy applied to the wrong column shows up.
    policies = [POLICIES[j % len(POLICIES)] if policy == "mixed" else policy for j in range(len(OBSERVATIONS))]
    targets, mask = policy_targets(table[list(OBSERVATIONS)].to_numpy(), policies, blank_as_negative)
    outcome = actual_outcomes(targets, mask)
    for j, (name, column_policy) in enumerate(zip(OBSERVATIONS, policies)):
        expected = expected_outcomes(raw_codes[:, j], column_policy, blank_as_negative)
        got = outcome_counts(outcome[:, j])
        assert got == outcome_counts(expected), f"{name} under {column_policy} (blank_as_negative={blank_as_negative})"
        assert got["other"] == 0  # no target outside {0, 1, 2}
        assert (outcome[:, j] == expected).all(), name  # and cell by cell, not just in total


@needs_real
def test_patient_level_fraction_split(table):
    split = make_split(table, "fractions", FRACTIONS, seed=0)
    assert len(split) == len(table) and split["path"].tolist() == table["path"].tolist()
    assert set(split["split"]) == set(SPLITS)
    splits_per_patient = split.groupby("patient")["split"].nunique()
    assert (splits_per_patient == 1).all(), "a patient's images are in two splits"
    patients = split.drop_duplicates("patient")["split"].value_counts()
    n_patients = table["patient"].nunique()
    assert int(patients.sum()) == n_patients
    for name, fraction in FRACTIONS.items():
        assert abs(patients[name] / n_patients - fraction) <= 0.005, name


@needs_real
def test_gzip_file_parses_like_the_plain_csv(tmp_path):
    # The first 500 real lines, once as .csv.gz and once decompressed: read_labels must agree.
    with gzip.open(REAL_PATH, "rt", newline="") as f:
        head = "".join(next(f) for _ in range(501))
    plain = tmp_path / "train.csv"
    plain.write_text(head, newline="")
    packed = tmp_path / "train.csv.gz"
    with gzip.open(packed, "wt", newline="") as f:
        f.write(head)
    pd.testing.assert_frame_equal(read_labels(packed), read_labels(plain))
    assert len(read_labels(plain)) == 500


@needs_real
def test_default_path_is_the_packaged_file(monkeypatch):
    seen = []
    monkeypatch.setattr(real_labels.chexpert, "read_labels", lambda path: seen.append(path) or pd.DataFrame())
    real_labels.read_real_chexpert()
    assert seen == [REAL_PATH] and REAL_PATH.name == "chexpert_train.csv.gz" and REAL_PATH.is_file()


@needs_real
def test_locating_the_file_does_not_import_torchxrayvision():
    code = ("import sys; from cxrtransfer.data.real_labels import real_chexpert_labels_path as f; "
            "print(f() is not None, 'torchxrayvision' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False", "False"]


def test_missing_package_gives_none_and_a_clear_error(monkeypatch):
    monkeypatch.setattr(real_labels.importlib.util, "find_spec", lambda name: None)
    assert real_labels.real_chexpert_labels_path() is None
    with pytest.raises(InputError, match="torchxrayvision is not installed"):
        real_labels.read_real_chexpert()
