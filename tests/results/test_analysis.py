"""The ambiguity analysis on an exported (untrained) model over a tiny generated dataset."""
import numpy as np
import pytest
import torch

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


# Every head the project trains: GFocal, GFocalV2, the general-distribution ATSS (centre-ness), FCOS
# (points, centre-ness) and RetinaNet (9 anchors a location), and an LD student's head (its student alone).
HEADS = ["gfl_r18_1x", "gflv2_r18_1x", "atss_r18_1x", "fcos_r18_1x", "retina_r18_1x", "ld_retina_r18_gfl_r50_1x"]


@pytest.mark.parametrize("config", HEADS)
def test_the_analysis_detections_are_the_heads_own_predictions(tiny_export, config):
    """Each detection of the analysis (a prior's best class) is one of mmdet's own inference (its coder,
    centre-ness factor, NMS, rescale), which may also keep a prior's other classes; the best is the same.
    The analysis also keeps each one's prior and edge logits."""
    model = load_model(tiny_export(config))
    torch.manual_seed(0)
    with torch.no_grad():  # an untrained head's boxes all cover the image: boxes of a few strides, scores apart
        for p in model.bbox_head.parameters():
            p.normal_(0, 0.05) if p.dim() > 1 else p.fill_(1.0)  # Scale (and norms) 1
        for conv in model.bbox_head.modules():
            if isinstance(conv, torch.nn.Conv2d) and conv.out_channels % (4 * 17) == 0 and conv.out_channels > 17:
                conv.weight.mul_(0.1)
                conv.bias.copy_(-0.8 * torch.arange(17.0).repeat(conv.out_channels // 17))
    data = model.data_preprocessor(next(iter(val_loader(model))), False)
    det = predict_with_distributions(model, data, score_thr=0.0, max_per_img=5)[0]
    mmdet = model.predict(data["inputs"], data["data_samples"], rescale=True)[0].pred_instances
    assert len(det["bboxes"]) == 5 and det["logits"].shape == (5, 4 * 17)
    for k in range(5):
        same = ((mmdet.labels == det["labels"][k]) & ((mmdet.scores - det["scores"][k]).abs() < 1e-5)
                & ((mmdet.bboxes - det["bboxes"][k]).abs().max(dim=1).values < 1e-3))
        assert same.any(), f"detection {k} of the analysis is not one of mmdet's"
    assert float(det["scores"][0]) == pytest.approx(float(mmdet.scores[0]), abs=1e-6)
    assert (det["center"] % det["stride"][:, None] == 0).all()  # a prior's centre: a location of its level's grid


def test_kl_to_a_gfocal_teacher_reads_a_retinanet_students_location(tiny_export):
    """A RetinaNet student's 9 priors a location share the GFocal teacher's one distribution there."""
    from ld.results.analysis import head_outputs, teacher_prior_index

    assert teacher_prior_index(torch.tensor([0, 8, 9, 17, 18]), 9, 1).tolist() == [0, 0, 1, 1, 2]
    assert teacher_prior_index(torch.tensor([5, 7]), 9, 9).tolist() == [5, 7]
    student, teacher = load_model(tiny_export("ld_retina_r18_gfl_r50_1x")), load_model(tiny_export("gfl_r18_1x"))
    table = ambiguity_table({"teacher": teacher, "student": student}, teacher="teacher", score_thr=0.0, num_images=1)
    assert table.kl_to_teacher[table.model == "teacher"].abs().max() < 1e-5
    kl = table.kl_to_teacher[table.model == "student"]
    assert len(kl) and kl.notna().all() and (kl >= -1e-6).all()
    data = student.data_preprocessor(next(iter(val_loader(student))), False)
    det = predict_with_distributions(student, data, score_thr=0.0, max_per_img=1)[0]
    t_logits = head_outputs(teacher, data)[1][0, det["anchor"] // 9]  # restated: the location's row
    from ld.ops.ambiguity import kl_divergence
    from ld.ops.distribution import edge_probabilities

    expected = kl_divergence(edge_probabilities(t_logits, 16), edge_probabilities(det["logits"], 16))[0]
    first = table[table.model == "student"].iloc[:4]
    torch.testing.assert_close(torch.tensor(first.kl_to_teacher.to_numpy(), dtype=expected.dtype), expected,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("config", ["atss_r18_1x", "fcos_r18_1x", "retina_r18_1x", "ld_retina_r18_gfl_r50_1x"])
def test_ld_show_draws_any_heads_distributions(tiny_export, tmp_path, config, capsys):
    from PIL import Image

    from ld.cli import main

    image = tmp_path / "street.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (70, 100, 3), dtype=np.uint8)).save(image)
    run = tiny_export(config)
    assert main(["show", str(run / "config.py"), str(run / "model.pth"), str(image), "--out",
                 str(tmp_path / "fig.png"), "--score-thr", "0", "--top-k", "2"]) == 0
    assert Image.open(tmp_path / "fig.png").format == "PNG"
