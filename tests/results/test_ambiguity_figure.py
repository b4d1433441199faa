"""The paper's figure of one object's edge distributions (ld.results.ambiguity_figure) and `ld show`
(ld.results.show): pixel positions of the bins, matching, the crop, the legend, class names, end to end."""
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.colors import to_rgb
from matplotlib.lines import Line2D

from ld.errors import BadFileError, ConfigError, MissingFileError
from ld.ops.box_ops import distances_to_boxes
from ld.ops.distribution import EDGES, edge_probabilities, expected_offset
from ld.results.ambiguity_figure import (
    EDGE_COLORS,
    REFERENCE_COLOR,
    ROLE_COLORS,
    BoxDistributions,
    MatchedObject,
    box_distributions,
    by_role,
    draw_object_distributions,
    match_detection,
    matched_objects,
    object_view,
    pick_examples,
    role_colors,
    role_labels,
)
from ld.results.analysis import class_names, edge_bin_positions


def one_hot_logits(bins_per_edge, reg_max=4):
    """``(K, 4 * (reg_max + 1))`` logits whose edge ``e`` of detection ``k`` is certain at ``bins_per_edge[k][e]``."""
    logits = torch.full((len(bins_per_edge), 4 * (reg_max + 1)), -40.0)
    for k, bins in enumerate(bins_per_edge):
        for e, b in enumerate(bins):
            logits[k, e * (reg_max + 1) + b] = 40.0
    return logits


def detections(boxes, scores, labels, reg_max=4):
    """A hand-made :func:`predict_with_distributions` output of one image (no resize, stride 8)."""
    k = len(boxes)
    return {"bboxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), "scores": torch.tensor(scores),
            "labels": torch.tensor(labels), "logits": one_hot_logits([(1, 1, 1, 1)] * k, reg_max),
            "stride": torch.full((k,), 8.0), "center": torch.tensor([[40.0, 24.0]] * k).reshape(-1, 2),
            "scale": torch.tensor([1.0, 1.0])}


# --- distributions to pixels ---------------------------------------------------------------------------

def test_bin_b_lies_b_strides_from_the_anchor_in_original_image_pixels():
    positions = edge_bin_positions(torch.tensor([[40.0, 24.0]]), torch.tensor([8.0]), torch.tensor([2.0, 0.5]), 4)
    assert positions.shape == (1, 4, 5)
    assert positions[0].tolist() == [[20, 16, 12, 8, 4],           # left: x = (40 - 8 b) / 2
                                     [48, 32, 16, 0, -16],         # top: y = (24 - 8 b) / 0.5
                                     [20, 24, 28, 32, 36],         # right: x = (40 + 8 b) / 2
                                     [48, 64, 80, 96, 112]]        # bottom: y = (24 + 8 b) / 0.5


def test_the_mean_bin_position_is_the_decoded_box_edge():
    torch.manual_seed(0)
    logits, centers = torch.randn(3, 4 * 17), torch.tensor([[40.0, 24.0], [100.0, 60.0], [8.0, 8.0]])
    strides, scale = torch.tensor([8.0, 16.0, 32.0]), torch.tensor([1.5, 1.25])
    probs = edge_probabilities(logits)
    boxes = distances_to_boxes(centers, expected_offset(probs) * strides[:, None]) / scale.repeat(2)
    mean = (probs * edge_bin_positions(centers, strides, scale)).sum(-1)
    torch.testing.assert_close(mean, boxes)


def test_box_distributions_of_a_certain_detection_peak_at_its_edges():
    det = detections([[32, 16, 48, 32]], [0.9], [0])  # anchor (40, 24), every edge at bin 1: 8 px away
    dist = box_distributions(det, 0, reg_max=4)
    assert dist.probs.shape == (4, 5) and dist.score == pytest.approx(0.9) and dist.label == 0
    peaks = dist.positions[np.arange(4), dist.probs.argmax(axis=1)]
    assert peaks.tolist() == [32, 16, 48, 32]
    assert dist.entropies() == pytest.approx([0, 0, 0, 0], abs=1e-6)


# --- matching and examples -----------------------------------------------------------------------------

def test_matching_picks_the_best_overlap_of_the_right_class():
    det = detections([[0, 0, 10, 10], [1, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8, 0.7, 0.6],
                     [1, 0, 0, 0])
    assert match_detection(det, [0, 0, 10, 10], 0) == 2  # 0 overlaps exactly but is of class 1
    assert match_detection(det, [0, 0, 10, 10]) == 0      # any class: the exact one that scores highest
    assert match_detection(det, [0, 0, 10, 10], 0, score_thr=0.75) == 1
    assert match_detection(det, [52, 52, 62, 62], 0) is None  # IoU 0.47 < 0.5
    assert match_detection(det, [52, 52, 62, 62], 0, min_iou=0.3) == 3
    assert match_detection(detections([], [], []), [0, 0, 10, 10]) is None


def _dist(entropy_bins: int) -> BoxDistributions:
    """A detection whose four edges spread evenly over ``entropy_bins`` of 5 bins."""
    probs = np.zeros((4, 5))
    probs[:, :entropy_bins] = 1 / entropy_bins
    return BoxDistributions(np.array([0, 0, 10, 10.0]), probs, np.tile(np.arange(5.0), (4, 1)), 0.5, 0)


def _object(name, t, b, detected=(True, True)):
    return MatchedObject(name, np.array([0, 0, 10, 10.0]), 0, {"t": t, "b": b}, dict(zip("tb", detected)))


def test_examples_are_the_objects_most_models_detect_most_ambiguous_for_the_ranking_model_first():
    objects = [_object("a.jpg", _dist(1), _dist(2)),
               _object("b.jpg", _dist(1), None, (True, False)),            # no box of b's: never drawn
               _object("c.jpg", _dist(1), _dist(4)),
               _object("d.jpg", _dist(5), _dist(2)),
               _object("e.jpg", _dist(5), _dist(5), (True, False))]        # b only covers it: after the others
    assert [o.img_path for o in pick_examples(objects, 4, "b")] == ["c.jpg", "a.jpg", "d.jpg", "e.jpg"]
    assert [o.img_path for o in pick_examples(objects, 1, "t")] == ["d.jpg"]


# --- the figure ----------------------------------------------------------------------------------------

def test_object_view_holds_every_box_with_a_margin_and_a_bounded_aspect():
    assert object_view(np.array([[10, 20, 30, 30]])) == pytest.approx((3, 13, 37, 37))
    x0, y0, x1, y1 = object_view(np.array([[100, 100, 102, 160], [99, 102, 103, 158]]))
    assert x0 <= 99 and y0 <= 100 and x1 >= 103 and y1 >= 160
    assert (y1 - y0) == pytest.approx(2 * (x1 - x0))  # a thin object: widened to 2 : 1


def _figure(reference=True):
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    gt = np.array([150, 90, 190, 130.0])
    rng = np.random.default_rng(1)
    panels = {}
    for name, box in (("teacher", gt + [1, -1, 2, 0]), ("baseline", gt + [-6, 3, 5, -4]), ("LD", gt + [0, 0, 1, 1])):
        probs = rng.dirichlet(np.ones(17), size=4)
        positions = np.stack([box[0] + 4 * (np.arange(17) - 8), box[1] + 4 * (np.arange(17) - 8),
                              box[2] + 4 * (np.arange(17) - 8), box[3] + 4 * (np.arange(17) - 8)])
        panels[name] = BoxDistributions(box, probs, positions, 0.8, 0)
    fig = draw_object_distributions(image, panels, gt if reference else None, class_name="zebra")
    fig.canvas.draw()
    return fig, gt, panels


def _crops(fig):
    return [ax for ax in fig.axes if ax.images]


def test_figure_draws_each_model_on_the_same_neighbourhood_of_the_object():
    fig, gt, panels = _figure()
    crops = _crops(fig)
    assert len(crops) == 3 and len(fig.axes) == 3 * 5  # a crop and a strip per edge
    boxes = np.stack([gt, *(d.box for d in panels.values())])
    for ax in crops:
        (x0, x1), (y1, y0) = ax.get_xlim(), ax.get_ylim()  # y points down, as in the image
        assert x0 <= boxes[:, 0].min() and x1 >= boxes[:, 2].max()
        assert y0 <= boxes[:, 1].min() and y1 >= boxes[:, 3].max()
        assert x1 - x0 < 2 * (boxes[:, 2].max() - boxes[:, 0].min())  # a crop, not the 320 px image
        assert y1 - y0 < 2 * (boxes[:, 3].max() - boxes[:, 1].min())
        assert (ax.get_xlim(), ax.get_ylim()) == (crops[0].get_xlim(), crops[0].get_ylim())
    assert "zebra" in fig._suptitle.get_text() and "40 x 40 px" in fig._suptitle.get_text()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert [t.splitlines()[0] for t in titles] == ["teacher", "baseline", "LD"]
    assert all("IoU" in t and "score 0.80" in t for t in titles)


def test_the_left_edge_bars_stand_at_the_left_edge_positions():
    fig, gt, panels = _figure()
    strip = next(ax for ax in fig.axes if ax.get_title().startswith("teacher"))
    left = [p for p in strip.patches if p.get_facecolor()[:3] == pytest.approx(_rgb(EDGE_COLORS["left"]))]
    centres = [p.get_x() + p.get_width() / 2 for p in left]
    assert centres == pytest.approx(panels["teacher"].positions[0].tolist())
    assert [p.get_height() for p in left] == pytest.approx(panels["teacher"].probs[0].tolist())


def _rgb(color):
    return to_rgb(color)


def _strips(fig, crop):
    """edge -> the strip of ``crop`` that draws its distribution: the one holding bars of that edge's colour."""
    shares = [ax for ax in fig.axes if ax is not crop and (ax.get_shared_x_axes().joined(ax, crop) or
                                                           ax.get_shared_y_axes().joined(ax, crop))]
    return {edge: [ax for ax in shares if any(p.get_facecolor()[:3] == pytest.approx(_rgb(color))
                                              for p in ax.patches)] for edge, color in EDGE_COLORS.items()}


def test_each_edge_has_a_strip_of_its_own_beside_the_crop_no_two_overlapping():
    fig, gt, panels = _figure()
    renderer = fig.canvas.get_renderer()
    for crop, dist in zip(_crops(fig), panels.values()):
        strips = _strips(fig, crop)
        assert all(len(axes) == 1 for axes in strips.values()), "one strip per edge, its bars alone"
        strips = {edge: axes[0] for edge, axes in strips.items()}
        assert len(set(strips.values())) == 4
        for edge in ("left", "right"):  # above the crop, on its x axis
            assert strips[edge].get_shared_x_axes().joined(strips[edge], crop)
            assert strips[edge].get_position().y0 > crop.get_position().y1
            assert strips[edge].get_ylabel() == f"p({edge})"
        for edge in ("top", "bottom"):  # right of the crop, on its y axis
            assert strips[edge].get_shared_y_axes().joined(strips[edge], crop)
            assert strips[edge].get_position().x0 > crop.get_position().x1
            assert strips[edge].get_xlabel() == f"p({edge})"
        boxes = [ax.get_window_extent(renderer) for ax in (crop, *strips.values())]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        for e, edge in enumerate(EDGES):  # the model's edge and the ground truth's, drawn across its own strip
            lines = strips[edge].lines
            at = {round(float(line.get_xdata()[0] if e in (0, 2) else line.get_ydata()[0]), 3) for line in lines}
            assert at == {round(float(dist.box[e]), 3), round(float(gt[e]), 3)}


@pytest.mark.parametrize("reference", [True, False])
def test_the_legend_lies_outside_every_axes_and_names_every_line_style(reference):
    fig, _, _ = _figure(reference)
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    for ax in fig.axes:
        assert not box.overlaps(ax.get_tightbbox(renderer)), "the legend covers an axes"
    dash = {"solid": "-", "dashed": "--"}
    styles = {(_rgb(h.get_color()), h.get_linestyle()) for h in legend.legend_handles if isinstance(h, Line2D)}
    drawn = {(_rgb(line.get_color()), line.get_linestyle()) for ax in fig.axes for line in ax.lines}
    drawn |= {(_rgb(p.get_edgecolor()), dash[p.get_linestyle()]) for ax in fig.axes for p in ax.patches if not p.fill}
    assert drawn <= styles and len(drawn) == (6 if reference else 5)  # (reference,) anchor, four edges
    assert len(legend.texts) == (6 if reference else 5)


@pytest.mark.parametrize("models", [1, 3])
def test_the_legend_and_its_title_lie_inside_the_figure(models):
    """One panel (``ld show``'s figure) is narrower than the legend's title on one line: it wraps."""
    fig, _, panels = _figure()
    if models == 1:
        image = np.zeros((240, 320, 3), dtype=np.uint8)
        fig = draw_object_distributions(image, dict(list(panels.items())[:1]), subtitle="a.png")
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    inside = fig.bbox
    for box in (legend.get_window_extent(renderer), legend.get_title().get_window_extent(renderer)):
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
    for ax in fig.axes:
        assert not legend.get_window_extent(renderer).overlaps(ax.get_tightbbox(renderer))


def test_the_ground_truth_is_drawn_as_the_legend_shows_it_black_with_a_thin_outline():
    fig, _, _ = _figure()
    (legend,) = fig.legends
    handle = legend.legend_handles[[t.get_text() for t in legend.texts].index("ground truth")]
    for crop in _crops(fig):
        (box,) = [p for p in crop.patches if not p.fill]
        assert _rgb(box.get_edgecolor()) == _rgb(handle.get_color()) == _rgb(REFERENCE_COLOR) == (0, 0, 0)
        assert box.get_linewidth() == handle.get_linewidth()
        (stroke,) = box.get_path_effects()
        assert [type(e) for e in handle.get_path_effects()] == [type(stroke)]
        outline = stroke._gc["linewidth"]  # withStroke's own line: the white outline, under the black line
        assert outline == handle.get_path_effects()[0]._gc["linewidth"]
        assert (outline - box.get_linewidth()) / 2 < 0.5 * box.get_linewidth(), \
            "the white outline is thinner than the black line: the box reads black, not white"


# --- the models' names and colours ---------------------------------------------------------------------

ROLES = {"teacher": "gfl_r50_2x", "baseline": "gfl_r18_1x", "student": "ld_r18_gfl_r50_1x"}


def test_the_models_are_named_by_role_and_run_teacher_first():
    assert role_labels(ROLES) == {"gfl_r50_2x": "teacher (gfl_r50_2x)", "gfl_r18_1x": "baseline (gfl_r18_1x)",
                                  "ld_r18_gfl_r50_1x": "LD student (ld_r18_gfl_r50_1x)"}
    assert role_labels({**ROLES, "teacher": "gfl_r18_1x"}) == {  # Self-LD: the baseline teaches
        "gfl_r18_1x": "teacher = baseline (gfl_r18_1x)", "ld_r18_gfl_r50_1x": "LD student (ld_r18_gfl_r50_1x)"}
    assert role_colors(ROLES) == {"gfl_r50_2x": ROLE_COLORS["teacher"], "gfl_r18_1x": ROLE_COLORS["baseline"],
                                  "ld_r18_gfl_r50_1x": ROLE_COLORS["student"]}


def test_a_per_model_frame_is_ordered_and_named_by_role():
    frame = pd.DataFrame({"ld_r18_gfl_r50_1x": [0.1], "gfl_r18_1x": [0.2]}, index=["left"])  # no teacher column
    shown, colors = by_role(frame, ROLES)
    assert list(shown.columns) == ["baseline (gfl_r18_1x)", "LD student (ld_r18_gfl_r50_1x)"]
    assert shown.iloc[0].tolist() == [0.2, 0.1] and colors == [ROLE_COLORS["baseline"], ROLE_COLORS["student"]]


# --- class names ---------------------------------------------------------------------------------------

def _config(tmp_path, metainfo=""):
    path = tmp_path / "config.py"
    path.write_text(f"test_dataloader = dict(dataset=dict(type='CocoDataset'{metainfo}))\n")
    return path


def test_class_names_come_from_the_config_then_the_checkpoint_then_the_dataset_type(tmp_path):
    assert class_names(_config(tmp_path, ", metainfo=dict(classes=('cat', 'dog'))")) == ("cat", "dog")
    checkpoint = tmp_path / "model.pth"
    torch.save({"state_dict": {}, "meta": {"dataset_meta": {"classes": ("car",)}}}, checkpoint)
    assert class_names(_config(tmp_path), checkpoint) == ("car",)
    coco = class_names(_config(tmp_path))
    assert len(coco) == 80 and coco[0] == "person"
    with pytest.raises(BadFileError, match="names 80 classes but the model predicts 3"):
        class_names(_config(tmp_path), num_classes=3)


# --- end to end: matched objects and `ld show` on the tiny exported model ------------------------------

@pytest.fixture(scope="module")
def tiny_model(tiny_run):
    import ld.models  # noqa: F401  (registers the modules)
    from ld.results.analysis import load_model

    return load_model(tiny_run / "model")


def test_each_ground_truth_object_gets_each_models_match(tiny_model):
    import json

    objects = matched_objects({"a": tiny_model, "b": tiny_model}, num_images=2, score_thr=0.0, min_iou=0.0)
    annotations = json.loads(open(tiny_model.cfg.test_evaluator.ann_file).read())
    first_two = sorted(img["id"] for img in annotations["images"])[:2]
    assert len(objects) == sum(a["image_id"] in first_two for a in annotations["annotations"])
    for obj in objects:
        a, b = obj.matches["a"], obj.matches["b"]
        assert a is not None and a.probs.shape == (4, 17) and a.label == obj.label
        assert obj.detected == {"a": True, "b": True}
        np.testing.assert_array_equal(a.box, b.box)  # the same model matches the same detection


def test_an_undetected_object_gets_the_box_that_best_covers_it(tiny_model):
    from ld.ops.box_ops import box_iou
    from ld.results.analysis import predict_with_distributions, val_loader

    objects = matched_objects({"a": tiny_model}, num_images=1, score_thr=1.01, cover_iou=0.0)  # nothing detected
    assert objects and all(o.detected == {"a": False} for o in objects)
    data = tiny_model.data_preprocessor(next(iter(val_loader(tiny_model))), False)
    det = predict_with_distributions(tiny_model, data, score_thr=0.0)[0]
    for obj in objects:
        best = box_iou(det["bboxes"], torch.tensor(obj.gt_box)[None])[:, 0].argmax()
        np.testing.assert_array_equal(obj.matches["a"].box, det["bboxes"][best].numpy())  # any class, any score


def _png(path, size=(100, 70)):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)
    return path


def test_show_writes_a_png_of_the_top_detections_of_any_image(tiny_run, tmp_path):
    from PIL import Image

    from ld.results.show import show_image

    model = tiny_run / "model"
    out = show_image(model / "config.py", model / "model.pth", _png(tmp_path / "street.png"), tmp_path / "fig.png",
                     score_thr=0.0, top_k=2)
    assert out == tmp_path / "fig.png" and Image.open(out).format == "PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png", "street.png"]  # no temporary file left
    boxed = show_image(model / "config.py", model / "model.pth", tmp_path / "street.png", tmp_path / "box.png",
                       box=[20, 10, 60, 50], score_thr=0.0)
    assert Image.open(boxed).format == "PNG"


def test_show_names_the_missing_or_bad_file(tiny_run, tmp_path):
    from ld.results.show import show_image

    model = tiny_run / "model"
    with pytest.raises(MissingFileError, match="image .*nowhere.jpg not found"):
        show_image(model / "config.py", model / "model.pth", tmp_path / "nowhere.jpg", tmp_path / "fig.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(BadFileError, match="notes.png cannot be decoded as an image"):
        show_image(model / "config.py", model / "model.pth", tmp_path / "notes.png", tmp_path / "fig.png")
    with pytest.raises(MissingFileError, match="config .*elsewhere.config.py not found"):
        show_image(tmp_path / "elsewhere" / "config.py", tmp_path / "elsewhere" / "model.pth",
                   _png(tmp_path / "a.png"), tmp_path / "fig.png")
    with pytest.raises(ConfigError, match="x2 > x1"):
        show_image(model / "config.py", model / "model.pth", tmp_path / "a.png", tmp_path / "fig.png", box=[5, 5, 1, 9])
    assert not (tmp_path / "fig.png").exists()


def test_a_missing_model_names_the_stage_that_makes_it(repo_root):
    from ld.results.analysis import load_model

    with pytest.raises(MissingFileError, match=r"models/no_profile/gfl_r18_1x/config.py not found.*dvc repro "
                                               r"train@gfl_r18_1x"):
        load_model("models/no_profile/gfl_r18_1x")
