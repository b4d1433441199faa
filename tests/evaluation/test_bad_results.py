"""Bad user input is a clear error naming the file, the record and the field: metrics files read by the
tables, an unknown notebook profile, and COCO results files given to `ld eval --results`."""
from __future__ import annotations

import json
import shutil

import nbformat
import pytest

from ld.errors import BadFileError, ConfigError, MissingFileError
from ld.evaluation.coco import evaluate_coco, load_results
from ld.results.study import seed_runs
from ld.results.tables import metrics_table
from tests.conftest import COCO_ANNS, REPO

# --- (1) metrics files read by the tables ------------------------------------------------------------

RUNS = [{"run": "t50", "model": "M50", "method": "teacher", "teacher": ""},
        {"run": "b18", "model": "M18", "method": "baseline", "teacher": ""},
        {"run": "imp", "model": "M101", "method": "imported teacher", "teacher": ""},
        {"run": "ld18", "model": "M18", "method": "Main LD", "teacher": "t50"}]


def _write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize(("content", "says"), [
    ("{not json", "is not a metrics JSON file"),
    ([0.3], "got a list"),
    ({"voc": {"AP": 0.3}}, "has no 'coco' block"),
    ({"coco": [0.3]}, "field 'coco' is a list"),
    ({"coco": {"AP50": 0.3}}, "field 'coco.AP' is missing"),
    ({"coco": {"AP": "0.3"}}, "field 'coco.AP' is '0.3', not a number"),
    ({"coco": {"AP": 0.3, "AR100": None}}, "field 'coco.AR100' is None"),
])
def test_malformed_metrics_file_is_named_with_the_stage_that_writes_it(tmp_path, content, says):
    bad = _write(tmp_path / "b18.json", content)
    with pytest.raises(BadFileError) as err:
        metrics_table(tmp_path, RUNS)
    message = str(err.value)
    assert str(bad) in message and says in message
    assert "`dvc repro eval@b18`" in message and "delete the file" in message


@pytest.mark.parametrize(("run", "stage"), [("ld18", "eval_distill@ld18"), ("imp", "eval_teacher@imp"),
                                            ("t50", "eval@t50")])
def test_the_stage_named_is_the_runs_own(tmp_path, run, stage):
    _write(tmp_path / f"{run}.json", {"coco": {}})
    with pytest.raises(BadFileError, match=f"{run}.json: field 'coco.AP' is missing.*`dvc repro {stage}`"):
        metrics_table(tmp_path, RUNS)


def test_missing_metrics_files_are_still_not_run_rows(tmp_path):
    _write(tmp_path / "ld18.json", {"coco": {"AP": 0.3}, "voc": {}})
    df = metrics_table(tmp_path, RUNS).set_index("run")
    assert df.status.to_dict() == {"t50": "not run", "b18": "not run", "imp": "not run", "ld18": "ok"}
    assert df.loc["ld18", "AP"] == 0.3 and df.loc["ld18", "teacher_AP"] is None


def test_malformed_seed_file_names_the_seeds_stage(tmp_path):
    runs = [{"role": "teacher", "run": "t50", "teacher": "", "section": "", "model": "R-50", "method": ""},
            {"role": "baseline", "run": "b18", "teacher": "", "section": "baselines", "model": "R-18", "method": ""},
            {"role": "student", "run": "ld18", "teacher": "t50", "section": "students", "model": "R-18",
             "method": "Main LD"}]
    for run in ("t50", "b18", "ld18"):
        _write(tmp_path / "metrics" / f"{run}.json", {"coco": {"AP": 0.3}})
    per_seed = seed_runs(tmp_path / "metrics", tmp_path / "seeds", runs, [0, 1])
    assert per_seed.status.tolist() == ["ok", "ok", "not run", "ok", "not run"]
    bad = _write(tmp_path / "seeds" / "ld18" / "seed1.json", "")
    with pytest.raises(BadFileError) as err:
        seed_runs(tmp_path / "metrics", tmp_path / "seeds", runs, [0, 1])
    assert str(bad) in str(err.value) and "`dvc repro seeds_distill@ld18`" in str(err.value)
    _write(tmp_path / "metrics" / "t50.json", {"coco": None})  # the teacher: trained or imported
    with pytest.raises(BadFileError, match=r"t50\.json: has no 'coco' block.*eval@<run>"):
        seed_runs(tmp_path / "metrics", tmp_path / "seeds", runs, [0])


# --- (2) an unknown notebook profile -----------------------------------------------------------------

def _project(tmp_path, monkeypatch):
    """A repository root with a params file of two profiles and a notebook that writes results/<profile>."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")  # profiles smoke and mini
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "ld-workspace", "display_name": "ld", "language": "python"}}
    nb.cells = [nbformat.v4.new_code_cell('profile = "smoke"\nparams_file = "params.yaml"',
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("from pathlib import Path\nout = Path('results') / profile\n"
                                          "out.mkdir(parents=True, exist_ok=True)\n(out / 'ran').write_text(profile)")]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "n.ipynb")
    return tmp_path / "notebooks" / "n.ipynb"


def test_unknown_profile_is_refused_before_anything_runs_or_is_written(tmp_path, monkeypatch):
    from ld.results.notebooks import execute_notebook

    src = _project(tmp_path, monkeypatch)
    with pytest.raises(ConfigError) as err:
        execute_notebook(src, tmp_path / "results" / "mni" / "notebooks" / "n.ipynb", {"profile": "mni"},
                         progress=False)
    message = str(err.value)
    assert "unknown profile 'mni'" in message and "'mini', 'smoke'" in message and "params.yaml" in message
    assert not (tmp_path / "results").exists()


def test_unknown_profile_through_ld_notebook_exits_2(tmp_path, monkeypatch, capsys):
    from ld.cli import main

    src = _project(tmp_path, monkeypatch)
    assert main(["notebook", str(src), "results/mni/notebooks/n.ipynb", "-p", "profile", "mni"]) == 2
    assert main(["--profile", "mni", "notebook", str(src), "results/mni/notebooks/n.ipynb"]) == 2
    err = capsys.readouterr().err
    assert "unknown profile 'mni'" in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_a_named_params_file_that_does_not_exist_is_refused(tmp_path, monkeypatch):
    from ld.results.notebooks import execute_notebook

    src = _project(tmp_path, monkeypatch)
    with pytest.raises(MissingFileError, match="other.yaml"):
        execute_notebook(src, tmp_path / "out.ipynb", {"profile": "smoke", "params_file": "other.yaml"})
    with pytest.raises(MissingFileError, match="nope.ipynb"):
        execute_notebook(tmp_path / "nope.ipynb", tmp_path / "out.ipynb", {"profile": "smoke"})
    assert not (tmp_path / "out.ipynb").exists()


def test_a_known_profile_still_runs(tmp_path, monkeypatch):
    from ld.results.notebooks import execute_notebook

    src = _project(tmp_path, monkeypatch)
    execute_notebook(src, tmp_path / "results" / "mini" / "notebooks" / "n.ipynb", {"profile": "mini"},
                     progress=False, timeout=120)
    assert (tmp_path / "results" / "mini" / "ran").read_text() == "mini"


# --- (3) COCO results files ---------------------------------------------------------------------------

def _dets():
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.5 + 0.1 * a["id"],
             "bbox": [a["bbox"][0] + a["id"], *a["bbox"][1:]]} for a in COCO_ANNS]


BAD_RECORDS = [
    ({"category_id": 7}, "field 'category_id' = 7", "category ids not in"),
    ({"bbox": [1, 2, 3]}, "field 'bbox' is [1, 2, 3], not [x, y, width, height]", ""),
    ({"bbox": [1, 2, "3", 4]}, "field 'bbox' is [1, 2, '3', 4]", ""),
    ({"bbox": "1 2 3 4"}, "field 'bbox' is '1 2 3 4'", ""),
    ({"score": None}, "field 'score' is missing", ""),
    ({"score": "high"}, "field 'score' is 'high', not a finite number", ""),
    ({"image_id": None}, "field 'image_id' is missing", ""),
    ({"category_id": "a"}, "field 'category_id' is 'a', not an integer id", ""),
]


@pytest.mark.parametrize(("change", "says", "also"), BAD_RECORDS)
def test_a_bad_record_is_named_by_file_index_and_field(coco_gt, tmp_path, change, says, also):
    dets = _dets()
    dets[1].update(change)
    dets[1] = {k: v for k, v in dets[1].items() if v is not None}
    path = _write(tmp_path / "dets.bbox.json", dets)
    with pytest.raises(BadFileError) as err:
        evaluate_coco(coco_gt, path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "record 1 (0-based)" in message and says in message
    assert also in message


def test_a_record_that_is_not_an_object_and_a_missing_file(coco_gt, tmp_path):
    path = _write(tmp_path / "dets.bbox.json", [_dets()[0], [1, 2, 3, 4]])
    with pytest.raises(BadFileError, match=r"dets\.bbox\.json: record 1 \(0-based\) is a list"):
        load_results(path)
    with pytest.raises(MissingFileError, match="nope.json"):
        load_results(tmp_path / "nope.json")


def test_unknown_ids_in_records_given_as_a_list_are_errors_too(coco_gt):
    dets = _dets()
    dets[2]["category_id"] = 9
    with pytest.raises(BadFileError, match=r"category ids not in .*gt\.json: \[9\].*record 2 .*'category_id'"):
        evaluate_coco(coco_gt, dets)
    dets[2]["category_id"], dets[0]["image_id"] = 1, 5
    with pytest.raises(BadFileError, match=r"image ids not in .*\[5\].*record 0 .*'image_id'"):
        evaluate_coco(coco_gt, dets)


def test_a_valid_file_evaluates_as_its_records(coco_gt, tmp_path):
    path = _write(tmp_path / "dets.bbox.json", _dets())
    records = load_results(path)
    assert records == _dets() and records.path == path
    from_file = evaluate_coco(coco_gt, path)
    assert from_file == evaluate_coco(coco_gt, _dets()) and 0 < from_file["AP"] < 1
    assert evaluate_coco(coco_gt, _write(tmp_path / "none.json", [])) == evaluate_coco(coco_gt, [])


def _config(tmp_path, coco_gt):
    return _write(tmp_path / "config.py", f"test_evaluator = dict(ann_file={str(coco_gt)!r})\nvoc_metrics = True\n")


def test_ld_eval_of_a_bad_results_file_exits_2_naming_it(coco_gt, tmp_path, capsys):
    from ld.cli import main

    config = _config(tmp_path, coco_gt)
    for change in ({"category_id": 7}, {"bbox": [1, 2, 3]}, {"score": "x"}):
        dets = _dets()
        dets[2].update(change)
        path = _write(tmp_path / "bad.bbox.json", dets)
        assert main(["eval", str(config), "--results", str(path), "--out", str(tmp_path / "m.json")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"ld eval: error: {path}: ") and "record 2 (0-based)" in err
        assert "Traceback" not in err
    assert not (tmp_path / "m.json").exists()


def test_ld_eval_of_a_valid_results_file_still_works(coco_gt, tmp_path):
    from ld.cli import main

    path = _write(tmp_path / "dets.bbox.json", _dets())
    config = _config(tmp_path, coco_gt)
    assert main(["eval", str(config), "--results", str(path), "--out", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["coco"] == evaluate_coco(coco_gt, _dets()) and "voc" in metrics
