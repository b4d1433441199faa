"""`ld report`: notebooks executed and rendered to HTML with an index, everything under its output folder;
a failing notebook fails the command with its cell named, never replaces a good notebook, and leaves the
other reports intact."""
import base64

import nbformat
import pytest

from ld.results.notebooks import NotebookError, execute_notebook, failed_path
from ld.results.report import ReportError, build_reports

# a 1x1 PNG
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
                       "rkJggg==")


def _notebook(path, *sources, tagged_parameters=True):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "ld-workspace", "display_name": "ld", "language": "python"}}
    cells = ([nbformat.v4.new_code_cell('profile = "x"\nfigures_dir = None', metadata={"tags": ["parameters"]})]
             if tagged_parameters else [])
    nb.cells = cells + [nbformat.v4.new_code_cell(s) for s in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def _executed(path, printed):
    """A notebook as its stage left it: a cell that printed ``printed`` (the page renders outputs only)."""
    _notebook(path, f"print({printed!r})")
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{printed}\n")]
    nbformat.write(nb, path)


def _project(tmp_path, monkeypatch, ambiguity="x = 1"):
    """A profile `t` whose table, claims and ambiguity stages ran, and the two analysis notebooks."""
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results" / "t"
    for name in ("runs_table", "seeds_table", "claims", "ambiguity"):
        _executed(results / "notebooks" / f"{name}.ipynb", f"{name} shown")
    (results / "tables").mkdir(parents=True)
    (results / "tables" / "runs.csv").write_text("run,AP (%)\ngfl_r18_1x,40.1\nld_r18_gfl_r50_1x,41.3\n")
    (results / "tables" / "claims.csv").write_text("claim,difference,verdict\nLD helps,+1.0 ± 0.2,holds\n")
    (results / "figures").mkdir()
    (results / "figures" / "seeds_ap.png").write_bytes(PNG)
    _notebook(tmp_path / "notebooks" / "ambiguity.ipynb", ambiguity)
    _notebook(tmp_path / "notebooks" / "compare_runs.ipynb",
              "import matplotlib.pyplot as plt\nfrom pathlib import Path\nplt.plot([0, 1], [1, 0])\n"
              "Path(figures_dir).mkdir(parents=True, exist_ok=True)\nplt.savefig(Path(figures_dir) / 'c.png')\n"
              "plt.show()\nprint('profile is', profile)")
    return results


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_failing_notebook_is_named_and_the_other_reports_are_written(tmp_path, monkeypatch):
    _project(tmp_path, monkeypatch, ambiguity="raise ValueError('boom')")
    out = tmp_path / "elsewhere"  # executes the analysis notebooks there, the ambiguity analysis too
    # cell 3 in execution order: papermill injects the parameters after the tagged cell
    with pytest.raises(ReportError, match=r"ambiguity \(cell 3: ValueError: boom\)"):
        build_reports("t", out, only=["runs_table", "ambiguity", "compare_runs"], timeout=120)
    reports = out / "reports"
    compare = (reports / "compare_runs.html").read_text()
    assert "profile is t" in compare and "data:image/png;base64," in compare  # parameter injected, figure embedded
    assert (out / "figures" / "compare" / "c.png").is_file()  # its figures_dir
    assert "runs_table shown" in (reports / "runs_table.html").read_text()
    index = (reports / "index.html").read_text()
    assert 'href="compare_runs.html"' in index and "failed: cell 3: ValueError: boom" in index
    assert "boom" in (reports / "ambiguity.html").read_text()  # rendered up to the failing cell
    executed = out / "notebooks" / "ambiguity.ipynb"
    assert not executed.exists() and failed_path(executed).is_file()


def test_in_the_profile_folder_a_stage_executed_page_is_rendered_as_its_stage_left_it(tmp_path, monkeypatch):
    results = _project(tmp_path, monkeypatch, ambiguity="raise ValueError('boom')")
    build_reports("t", only=["ambiguity", "claims"], timeout=120)  # the `ambiguity` stage's notebook, not run again
    assert "ambiguity shown" in (results / "reports" / "ambiguity.html").read_text()
    assert "claims shown" in (results / "reports" / "claims.html").read_text()
    (results / "notebooks" / "ambiguity.ipynb").unlink()
    with pytest.raises(ReportError, match="run the `ambiguity` stage first"):
        build_reports("t", only=["ambiguity"], timeout=120)


def test_reports_without_a_table_notebook_name_its_stage(tmp_path, monkeypatch):
    _project(tmp_path, monkeypatch)
    (tmp_path / "results" / "t" / "notebooks" / "seeds_table.ipynb").unlink()
    with pytest.raises(ReportError, match="run the `seeds_table` stage first"):
        build_reports("t", timeout=120)
    index = (tmp_path / "results" / "t" / "reports" / "index.html").read_text()
    assert "not written" in index and (tmp_path / "results" / "t" / "reports" / "ambiguity.html").is_file()


def test_a_report_writes_only_under_its_output_folder(tmp_path, monkeypatch):
    results = _project(tmp_path, monkeypatch)
    before = _files(tmp_path)
    index = build_reports("t", tmp_path / "elsewhere", paper_tables=[], timeout=120)
    assert index == tmp_path / "elsewhere" / "reports" / "index.html"
    assert _files(tmp_path / "results") == {k.relative_to("results"): v for k, v in before.items()
                                             if k.parts[0] == "results"}  # nothing written or changed there
    assert {p for p in _files(tmp_path) if p.parts[0] != "elsewhere"} == set(before)
    out = tmp_path / "elsewhere"
    assert {p.name for p in (out / "reports").iterdir()} == {"index.html", "runs_table.html", "ambiguity.html",
                                                             "compare_runs.html", "seeds_table.html", "claims.html"}
    assert (out / "notebooks" / "ambiguity.ipynb").is_file() and (out / "figures" / "compare" / "c.png").is_file()
    assert results.is_dir()


def test_the_index_opens_with_the_headline_table_the_claims_and_the_seed_figure(tmp_path, monkeypatch):
    _project(tmp_path, monkeypatch)
    build_reports("t", timeout=120)
    index = (tmp_path / "results" / "t" / "reports" / "index.html").read_text()
    table, claims = index.index("<table"), index.index("<td>LD helps</td>")
    figure, links = index.index("data:image/png;base64,"), index.index("<ul>")
    assert table < claims < figure < links and "<td>+1.0 ± 0.2</td>" in index
    assert "<td>ld_r18_gfl_r50_1x</td>" in index and "<td>41.3</td>" in index and "AP (%)" in index
    for name in ("runs_table", "claims", "ambiguity", "compare_runs", "seeds_table"):
        assert f'href="{name}.html"' in index


def test_paper_tables_are_pages_too(tmp_path, monkeypatch):
    results = _project(tmp_path, monkeypatch)
    _executed(results / "notebooks" / "paper_voc.ipynb", "the VOC table")
    build_reports("t", paper_tables=["voc"], only=["paper_voc"], timeout=120)
    assert "the VOC table" in (results / "reports" / "paper_voc.html").read_text()
    with pytest.raises(ReportError, match=r"unknown report page\(s\) \['paper_coco'\]"):
        build_reports("t", paper_tables=["voc"], only=["paper_coco"], timeout=120)


def test_a_failed_run_never_replaces_a_good_notebook(tmp_path, monkeypatch, capsys):
    from ld.cli import main

    monkeypatch.chdir(tmp_path)
    _notebook(tmp_path / "good.ipynb", "print('good result')")
    _notebook(tmp_path / "bad.ipynb", "from ld.errors import MissingFileError\nraise MissingFileError("
                                      "'model models/x/config.py not found: get it with dvc pull')")
    dst = execute_notebook(tmp_path / "good.ipynb", tmp_path / "out" / "n.ipynb", {"profile": "p"}, progress=False)
    good = dst.read_bytes()
    with pytest.raises(NotebookError) as err:
        execute_notebook(tmp_path / "bad.ipynb", dst, {"profile": "p"}, progress=False)
    assert dst.read_bytes() == good and failed_path(dst).is_file()
    assert "MissingFileError: model models/x/config.py not found" in str(err.value) and "\n" not in str(err.value)
    assert main(["--profile", "p", "notebook", str(tmp_path / "bad.ipynb"), str(dst)]) == 2
    stderr = capsys.readouterr().err  # papermill's progress bar, then one line
    error = stderr.rstrip("\n").split("\n")[-1].split("\r")[-1]
    assert error.startswith("ld notebook: error: ") and "dvc pull" in error and "Traceback" not in stderr
    execute_notebook(tmp_path / "good.ipynb", dst, {"profile": "p"}, progress=False)
    assert not failed_path(dst).exists()  # a later success clears the failed run


def test_executed_notebooks_are_byte_stable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _notebook(tmp_path / "n.ipynb", "import warnings\nwarnings.warn('volatile')\nprint('result', profile)")
    first = execute_notebook(tmp_path / "n.ipynb", tmp_path / "a.ipynb", {"profile": "p"}, progress=False)
    second = execute_notebook(tmp_path / "n.ipynb", tmp_path / "b.ipynb", {"profile": "p"}, progress=False)
    assert first.read_bytes() == second.read_bytes()
    assert "result p" in first.read_text() and '"name": "stderr"' not in first.read_text()


def test_pages_show_outputs_only_and_the_caveat_atop_every_page(tmp_path, monkeypatch):
    """No code cell and no injected parameters in the HTML; a profile's caveat is the first thing on every
    page and on the index; without one, no banner."""
    _project(tmp_path, monkeypatch)
    caveat = "Smoke profile: its numbers mean nothing & prove the machinery"
    index = build_reports("t", tmp_path / "warned", only=["runs_table", "compare_runs"], timeout=120, caveat=caveat)
    for page in (index, index.parent / "runs_table.html", index.parent / "compare_runs.html"):
        text = page.read_text()
        body = text[text.index("<body"):]
        assert "Smoke profile: its numbers mean nothing &amp; prove the machinery" in body
        first = min(body.index(m) for m in ("<h1", "<table", "shown", "profile is") if m in body)
        assert body.index("ld-caveat") < first, page
    compare = (index.parent / "compare_runs.html").read_text()
    assert "profile is t" in compare  # outputs kept
    assert 'profile = "t"' not in compare and "plt.plot" not in compare and "print(" not in compare  # no inputs
    plain = build_reports("t", tmp_path / "plain", only=["runs_table"], timeout=120)
    for page in (plain, plain.parent / "runs_table.html"):
        assert "ld-caveat'>" not in page.read_text()
