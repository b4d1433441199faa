"""`ld report`: notebooks executed and rendered to HTML with an index; a failing notebook fails the
command with its cell named and leaves the other reports intact."""
import nbformat
import pytest

from ld.results.report import ReportError, build_reports


def _notebook(path, *sources, tagged_parameters=True):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "ld-workspace", "display_name": "ld", "language": "python"}}
    cells = [nbformat.v4.new_code_cell('profile = "x"', metadata={"tags": ["parameters"]})] if tagged_parameters else []
    nb.cells = cells + [nbformat.v4.new_code_cell(s) for s in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_failing_notebook_is_named_and_the_other_reports_are_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _notebook(tmp_path / "results" / "t" / "notebooks" / "runs_table.ipynb", "print('table')")
    _notebook(tmp_path / "notebooks" / "ambiguity.ipynb", "x = 1", "raise ValueError('boom')")
    _notebook(tmp_path / "notebooks" / "compare_runs.ipynb",
              "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()\nprint('profile is', profile)")
    # cell 4 in execution order: papermill injects the parameters after the tagged cell
    with pytest.raises(ReportError, match=r"ambiguity \(cell 4: ValueError: boom\)"):
        build_reports("t", tmp_path / "reports", timeout=120)
    reports = tmp_path / "reports"
    compare = (reports / "compare_runs.html").read_text()
    assert "profile is t" in compare and "data:image/png;base64," in compare  # parameter injected, figure embedded
    assert "table" in (reports / "runs_table.html").read_text()
    index = (reports / "index.html").read_text()
    assert 'href="compare_runs.html"' in index and "failed: cell 4: ValueError: boom" in index
    assert "boom" in (reports / "ambiguity.html").read_text()  # rendered up to the failing cell


def test_reports_without_the_table_notebook_say_what_to_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _notebook(tmp_path / "notebooks" / "ambiguity.ipynb", "pass")
    _notebook(tmp_path / "notebooks" / "compare_runs.ipynb", "pass")
    with pytest.raises(ReportError, match="run the `table` stage first"):
        build_reports("t", tmp_path / "reports", timeout=120)
    assert (tmp_path / "reports" / "ambiguity.html").is_file()


def test_executed_notebooks_are_byte_stable(tmp_path, monkeypatch):
    from ld.results.notebooks import execute_notebook

    monkeypatch.chdir(tmp_path)
    _notebook(tmp_path / "n.ipynb", "import warnings\nwarnings.warn('volatile')\nprint('result', profile)")
    first = execute_notebook(tmp_path / "n.ipynb", tmp_path / "a.ipynb", {"profile": "p"}, progress=False)
    second = execute_notebook(tmp_path / "n.ipynb", tmp_path / "b.ipynb", {"profile": "p"}, progress=False)
    assert first.read_bytes() == second.read_bytes()
    assert "result p" in first.read_text() and '"name": "stderr"' not in first.read_text()
