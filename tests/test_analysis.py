"""The ambiguity analysis on an exported (untrained) model over a tiny generated dataset."""
import pytest

import ld.models  # noqa: F401  (registers the modules)
from ld.results.analysis import ambiguity_table, load_model, predict_with_distributions, size_range, val_loader


@pytest.fixture
def run_dir(tiny_run):
    return tiny_run / "model"


def test_detections_carry_their_anchor_and_edge_logits(run_dir):
    model = load_model(run_dir)
    data = model.data_preprocessor(next(iter(val_loader(model))), False)
    det = predict_with_distributions(model, data, score_thr=0.0, max_per_img=7)[0]
    k = len(det["bboxes"])
    assert 0 < k <= 7
    assert det["logits"].shape == (k, 4 * 17) and det["anchor"].shape == (k,) and det["stride"].shape == (k,)
    assert (det["scores"][:-1] >= det["scores"][1:]).all()
    assert (det["bboxes"] >= 0).all() and (det["bboxes"][:, 2:] <= 64 + 1e-4).all()


def test_ambiguity_table_has_four_edges_per_detection_and_zero_kl_to_itself(run_dir):
    model = load_model(run_dir)
    table = ambiguity_table({"a": model, "b": model}, teacher="a", score_thr=0.0)
    assert set(table.edge) == {"left", "top", "right", "bottom"}
    assert (table.groupby(["model", "img_id", "score", "label"]).size() % 4 == 0).all()
    assert table.kl_to_teacher.abs().max() < 1e-5  # the same model: identical distributions
    assert table.norm_entropy.between(0, 1).all() and table.top_gap.between(0, 1).all()


def test_coco_size_ranges():
    assert [size_range(a) for a in (31**2, 32**2, 95**2, 96**2)] == ["small", "medium", "medium", "large"]
