"""`dvc plots show` and `dvc plots diff` draw offline: .dvc/config's ``plots.html_template`` is
.dvc/plots/offline.html (made by pipelines/plots/vendor_vega.py), with Vega, Vega-Lite and vega-embed inlined
where DVC's own page loads them from a CDN. The page is opened in headless Chromium with the network blocked,
and every chart must have drawn (vega-embed puts an <svg> or <canvas> of class ``marks`` in its div).
Chromium: ``apt-get install -y --no-install-recommends chromium`` (``make test`` installs it where it is
missing: its ``browser`` target)."""
import re
import runpy
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from tests.conftest import REPO

PINS = runpy.run_path(str(REPO / "pipelines" / "plots" / "vendor_vega.py"))["PINS"]
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (`make browser`: apt-get install chromium)")
# No network: every host name fails to resolve, and anything that still tries goes to a closed proxy port.
OFFLINE = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
           "--disable-background-networking", "--disable-component-update", "--disable-extensions",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--virtual-time-budget=10000"]


def _dvc_plots(out, *args):
    subprocess.run([sys.executable, "-m", "dvc", "plots", *args, "-o", str(out)], cwd=REPO, check=True,
                   capture_output=True, text=True, timeout=300)
    return (out / "index.html").read_text(encoding="utf-8")


def _charts(page):
    return re.findall(r"vegaEmbed\('#([^']+)'", page)


def _assert_self_contained(page):
    assert not re.search(r"<script[^>]*\ssrc\s*=", page, re.I), "a script is loaded instead of inlined"
    assert "cdn.jsdelivr.net" not in page
    for name, (version, _, integrity) in PINS.items():
        assert f"/*! {name}@{version} (npm, {integrity})" in page, f"{name}@{version} is not inlined"
    assert _charts(page), "no Vega chart on the page"


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots_show")
    return out, _dvc_plots(out, "show")


class _Marks(HTMLParser):
    """How many ``marks`` (svg or canvas) each div with an id holds."""

    def __init__(self):
        super().__init__()
        self.open, self.marks = [], {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div":
            self.open.append(attrs.get("id"))
            self.marks.setdefault(attrs.get("id"), 0)
        elif tag in ("svg", "canvas") and "marks" in (attrs.get("class") or "").split():
            for div in set(self.open):
                self.marks[div] += 1

    def handle_endtag(self, tag):
        if tag == "div" and self.open:
            self.open.pop()


def _drawn(page_file, profile):
    dom = subprocess.run([CHROMIUM, *OFFLINE, f"--user-data-dir={profile}", "--dump-dom", page_file.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    parser = _Marks()
    parser.feed(dom)
    return parser.marks


def test_the_vendored_template_is_the_one_dvc_uses_and_names_its_pins(shown):
    template = (REPO / ".dvc" / "plots" / "offline.html").read_text(encoding="utf-8")
    assert "{plot_divs}" in template and "{scripts}" not in template  # DVC's CDN <script> tags are left out
    _assert_self_contained(template + "vegaEmbed('#x'")
    _assert_self_contained(shown[1])


def test_plots_diff_uses_the_offline_template_too(tmp_path):
    _assert_self_contained(_dvc_plots(tmp_path, "diff", "HEAD"))


@needs_chromium
def test_every_chart_draws_in_chromium_without_network(shown, tmp_path):
    out, page = shown
    drawn = _drawn(out / "index.html", tmp_path / "profile")
    assert {chart: drawn.get(chart, 0) for chart in _charts(page)} == dict.fromkeys(_charts(page), 1)


@needs_chromium
def test_without_the_template_nothing_draws_so_the_network_is_really_blocked(shown, tmp_path):
    """The control: DVC's own page (its CDN scripts in place of the inlined ones) draws no chart here."""
    from dvc_render.vega import VegaRenderer

    out, page = shown
    scripts = re.compile(r"<script>/\*! vega.*?</script>", re.S)
    assert len(scripts.findall(page)) == len(PINS)
    cdn = out / "cdn.html"
    cdn.write_text(scripts.sub("", page).replace("</title>", "</title>" + VegaRenderer.SCRIPTS, 1), encoding="utf-8")
    assert sum(_drawn(cdn, tmp_path / "profile").values()) == 0
