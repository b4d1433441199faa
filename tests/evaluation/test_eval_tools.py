"""`ld eval`, `ld convert` and `ld bench fps` on a tiny generated dataset and an untrained model."""
import itertools
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config

import ld.models  # noqa: F401  (registers the modules)
from ld.engine.convert import convert_checkpoint, is_teacher_key
from ld.engine.evaluate import evaluate_checkpoint, set_nms
from ld.errors import BadFileError, ConfigError
from ld.frames import format_ap
from ld.models import student_only


def test_eval_writes_coco_and_voc_metrics_and_a_results_file_that_evaluates_the_same(tiny_run, tmp_path):
    run = tiny_run / "model"
    metrics = evaluate_checkpoint(run / "config.py", run / "model.pth", tmp_path / "m.json",
                                  results_out=tmp_path / "dets.bbox.json", tables_dir=tmp_path / "tables")
    assert set(metrics) == {"coco", "voc"}
    assert set(metrics["coco"]) == {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100"}
    voc = metrics["voc"]
    assert voc["AP"] == pytest.approx(np.mean(list(voc["AP_by_iou_voc07_11pt"].values())), abs=1e-6)
    assert voc["AP50"] == voc["AP_by_iou_voc07_11pt"]["AP50"] == voc["mAP50_voc07_11pt"]
    assert json.loads((tmp_path / "m.json").read_text()) == metrics
    assert "| disc " in (tmp_path / "tables" / "voc_per_class.md").read_text()
    # the metrics JSON keeps COCO's fractions; the per-class tables people read are in %
    assert all(value == -1.0 or 0.0 <= value <= 1.0 for value in metrics["coco"].values())
    assert (tmp_path / "tables" / "coco_per_class.csv").read_text().splitlines()[0] == "class,AP (%),AP50 (%),AP75 (%)"
    voc_rows = (tmp_path / "tables" / "voc_per_class.csv").read_text().splitlines()
    assert voc_rows[0] == "class,gts,dets,recall (%),ap (%)"
    assert voc_rows[-1] == f"mAP,,,,{format_ap(voc['mAP50_voc07_11pt'])}"
    records = json.loads((tmp_path / "dets.bbox.json").read_text())
    assert records and {"image_id", "category_id", "bbox", "score"} <= set(records[0])
    again = evaluate_checkpoint(run / "config.py", None, tmp_path / "m2.json", results=tmp_path / "dets.bbox.json")
    assert again == metrics


def test_cfg_options_are_merged_into_the_config_that_evaluation_runs(tiny_run, tmp_path):
    run = tiny_run / "model"

    def boxes_per_image(cfg_options):
        evaluate_checkpoint(run / "config.py", run / "model.pth", tmp_path / "m.json", results_out=tmp_path / "d.json",
                            cfg_options=cfg_options)
        return Counter(r["image_id"] for r in json.loads((tmp_path / "d.json").read_text()))

    assert min(boxes_per_image(None).values()) > 1  # the tiny run keeps many boxes per image
    one = boxes_per_image({"model.test_cfg.max_per_img": 1, "test_dataloader.batch_size": 2})
    assert len(one) == 4 and set(one.values()) == {1}
    assert boxes_per_image({"model.test_cfg.score_thr": 1.01}) == {}  # no score reaches it
    assert json.loads((tmp_path / "m.json").read_text())["coco"]["AP"] in (0.0, -1.0)
    with pytest.raises(ConfigError, match=r"has no key 'test_dataloder' \(did you mean 'test_dataloader'"):
        boxes_per_image({"test_dataloder.batch_size": 2})  # a typo is refused, as by ld train


def _direct_detections(cfg, checkpoint) -> list[dict]:
    """COCO result records of the student of ``cfg`` run by hand on its test split, as mmdet's CocoMetric
    writes them (xyxy -> xywh from the float32 boxes, category ids in label order)."""
    from mmengine.runner import Runner

    from ld.models.distiller import build_student

    model = build_student(cfg, checkpoint)
    cat_ids = [c["id"] for c in json.loads(Path(cfg.test_evaluator.ann_file).read_text())["categories"]]
    records = []
    with torch.no_grad():
        for batch in Runner.build_dataloader(model.cfg.test_dataloader):
            for sample in model.test_step(batch):
                pred = sample.pred_instances
                for box, score, label in zip(pred.bboxes.numpy(), pred.scores.numpy(), pred.labels.numpy()):
                    x1, y1, x2, y2 = box.tolist()
                    records.append({"image_id": sample.metainfo["img_id"], "bbox": [x1, y1, x2 - x1, y2 - y1],
                                    "score": float(score), "category_id": cat_ids[label]})
    return records


def test_the_nms_override_is_what_evaluation_runs(tiny_run, tmp_path):
    from ld.layout import NMS_TYPES

    run = tiny_run / "model"
    dets = {}
    for nms in NMS_TYPES:
        evaluate_checkpoint(run / "config.py", run / "model.pth", tmp_path / f"{nms}.json", nms=nms,
                            results_out=tmp_path / f"{nms}.bbox.json")
        dets[nms] = json.loads((tmp_path / f"{nms}.bbox.json").read_text())
        cfg = Config.fromfile(str(run / "config.py"))
        set_nms(cfg, nms)
        assert cfg.model.test_cfg.nms == {"type": nms, "iou_threshold": 0.6}
        assert dets[nms] == _direct_detections(cfg, run / "model.pth"), nms  # the same model, the same NMS
    assert dets["voting_cluster_diounms"] != dets["nms"]  # score voting moves the kept boxes
    assert NMS_TYPES == ("nms", "voting_cluster_diounms")
    with pytest.raises(ConfigError, match="unknown NMS type"):
        set_nms(Config.fromfile(str(run / "config.py")), "soft_nms_please")


def test_ld_eval_and_bench_fps_refuse_an_unknown_nms_naming_the_choices(capsys):
    from ld.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["eval", "c.py", "--out", "m.json", "--nms", "voting_cluster_diounms"]).nms == \
        "voting_cluster_diounms"
    for argv in (["eval", "c.py", "--out", "m.json", "--nms", "soft"],
                 ["bench", "fps", "c.py", "w.pth", "--nms", "soft"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv)
        assert exit_info.value.code == 2
        assert "argument --nms: invalid choice: 'soft' (choose from 'nms', 'voting_cluster_diounms')" in \
            capsys.readouterr().err


def perfect_results(ann_file, path):
    """A detector that returns the ground truth (not the ignored, iscrowd / difficult objects)."""
    gt = json.loads(ann_file.read_text())
    records = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in gt["annotations"] if not a.get("iscrowd")]
    path.write_text(json.dumps(records))
    return path


def assert_perfect(metrics):
    assert metrics["coco"]["AP"] == metrics["coco"]["AP50"] == metrics["coco"]["AP75"] == 1.0
    voc = metrics["voc"]
    assert voc["mAP50_voc07_11pt"] == voc["mAP50_area"] == voc["AP"] == 1.0
    assert set(voc["AP_by_iou_voc07_11pt"].values()) == {1.0}  # AP95 included


def test_a_perfect_detector_scores_one_at_every_iou_through_ld_eval(tiny_run, tmp_path):
    from ld.cli import main

    config = tiny_run / "model" / "config.py"
    results = perfect_results(Path(Config.fromfile(str(config)).test_evaluator.ann_file), tmp_path / "perfect.json")
    assert main(["eval", str(config), "--results", str(results), "--out", str(tmp_path / "m.json")]) == 0
    assert_perfect(json.loads((tmp_path / "m.json").read_text()))


def _upstream_style_checkpoint(tiny_run, path):
    """What an mmdet-2.x-era LD checkpoint carries: student weights, the teacher's, optimizer state."""
    student = torch.load(tiny_run / "model" / "model.pth")["state_dict"]
    state = {**student, **{f"teacher_model.{k}": v for k, v in list(student.items())[:20]},
             "bbox_head.teacher_model.gfl_reg.weight": torch.zeros(3)}
    torch.save({"state_dict": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": []}]},
                "meta": {"epoch": 12, "mmdet_version": "2.25.0", "CLASSES": ("a", "b", "c")}}, path)
    return len(student)


def test_convert_keeps_exactly_the_student(tiny_run, tmp_path):
    src = tmp_path / "ld_upstream.pth"
    kept = _upstream_style_checkpoint(tiny_run, src)
    sizes = convert_checkpoint(src, tmp_path / "student.pth", tiny_run / "model" / "config.py")
    assert sizes["kept_keys"] == kept and sizes["dropped_keys"] == 21
    assert sizes["dst_bytes"] < sizes["src_bytes"]
    out = torch.load(tmp_path / "student.pth")
    assert set(out) == {"state_dict", "meta"} and not any(is_teacher_key(k) for k in out["state_dict"])
    from mmdet.registry import MODELS

    model = MODELS.build(student_only(Config.fromfile(str(tiny_run / "model" / "config.py"))).model)
    model.load_state_dict(out["state_dict"], strict=True)


def test_convert_refuses_weights_of_another_model(tiny_run, tmp_path):
    src = tmp_path / "other.pth"
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(1)}}, src)
    with pytest.raises(BadFileError, match=r"other\.pth does not fit the student.*missing keys"):
        convert_checkpoint(src, tmp_path / "out.pth", tiny_run / "model" / "config.py")
    assert not (tmp_path / "out.pth").exists()


def test_fps_benchmark_reports_model_and_end_to_end_speed(tiny_run, monkeypatch):
    import ld.engine.fps

    clock = itertools.count()  # each reading of the benchmark's clock is one second after the last
    monkeypatch.setattr(ld.engine.fps, "time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
    run = tiny_run / "model"
    result = ld.engine.fps.benchmark_fps(run / "config.py", run / "model.pth", num_images=3, warmup=1)
    assert result["images"] == 3 and result["input_size"] == [64, 64] and result["nms"] == "nms"
    # per timed image: loading 1 s, the network 1 s, post-processing 1 s; end to end leaves out the extra raw
    # forward (the network's second), and the warmup batch counts in neither
    assert result["model_fps"] == 1.0 and result["end_to_end_fps"] == 0.5
    assert result["device"] == "cpu" and result["batch_size"] == 1
    voting = ld.engine.fps.benchmark_fps(run / "config.py", run / "model.pth", num_images=1, warmup=0,
                                         nms="voting_cluster_diounms")
    assert voting["nms"] == "voting_cluster_diounms" and voting["model_fps"] == 1.0
