"""The deterministic mode (ld/cpu_pinning.py): which profiles ask for it, what `ld` pins before torch starts,
and what the pinned kernels compute with."""
import json
import subprocess
import sys

import yaml

from ld.cpu_pinning import PINNED_ENV, PINNING, wants_pinning
from tests.conftest import REPO

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def _python(code: str, env: dict | None = None) -> dict:
    """Run ``code`` in a fresh interpreter (torch not imported yet) and return the JSON it prints last."""
    base = {k: v for k, v in __import__("os").environ.items() if k not in PINNED_ENV}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**base, **(env or {})},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_smoke_is_deterministic_and_the_other_profiles_are_not(tmp_path):
    params = str(REPO / "params.yaml")
    assert PARAMS["profile"] == "smoke" and wants_pinning(params, None)
    assert {name for name in PARAMS["profiles"] if wants_pinning(params, name)} == {"smoke"}
    assert not wants_pinning(str(tmp_path / "missing.yaml"), "smoke")  # no params file: nothing pinned
    (tmp_path / "bad.yaml").write_text("profile: [")
    assert not wants_pinning(str(tmp_path / "bad.yaml"), None)


def test_ld_pins_the_process_before_torch_starts_for_a_deterministic_profile(tmp_path):
    (tmp_path / "t").mkdir()
    code = ("import json, os, sys; from ld import cli;"
            " rc = cli.main(['--profile', '{profile}', 'compare', '{t}', '{t}', '--ap-tol', '0']);"
            " import torch; from ld.cpu_pinning import active;"
            " from ld.models.distiller import teacher_dtype;"
            " print(json.dumps({{'env': {{k: os.environ.get(k) for k in {keys!r}}}, 'active': active(),"
            " 'capability': torch.backends.cpu.get_cpu_capability(), 'threads': torch.get_num_threads(),"
            " 'teacher': str(teacher_dtype('auto', 'cpu'))}}))")
    pinned = _python(code.format(profile="smoke", t=tmp_path / "t", keys=list(PINNED_ENV)))
    assert pinned["env"] == PINNED_ENV
    assert pinned["active"] == PINNING and pinned["capability"] == "AVX2" and pinned["threads"] == 2
    assert pinned["teacher"] == "None"  # auto: no native bfloat16 under AVX2 kernels, the teacher in float32
    free = _python(code.format(profile="mini", t=tmp_path / "t", keys=list(PINNED_ENV)))
    assert free["env"] == dict.fromkeys(PINNED_ENV) and free["active"] is None


def test_a_process_with_torch_already_loaded_is_left_as_it_is(tmp_path):
    (tmp_path / "t").mkdir()
    out = _python("import json, os, torch; from ld import cli; cli.main(['--profile', 'smoke', 'compare', "
                  f"'{tmp_path / 't'}', '{tmp_path / 't'}', '--ap-tol', '0']);"
                  " print(json.dumps(os.environ.get('ATEN_CPU_CAPABILITY')))")
    assert out is None


def test_the_cpu_is_named_by_vendor_model_family_and_model(tmp_path):
    from ld.cpu_pinning import cpu_name

    (tmp_path / "cpuinfo").write_text("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
                                      "model name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: avx2 amx_tile\n\n"
                                      "processor\t: 1\nvendor_id\t: GenuineIntel\n")
    assert cpu_name(tmp_path / "cpuinfo") == "GenuineIntel Intel(R) Xeon(R) Platinum 8481C (family 6, model 143)"
