"""params.yaml checked as a whole before any stage runs: every problem listed at once, each by its key path."""
from __future__ import annotations

import copy
import dataclasses

import pytest
import yaml

from ld.errors import ConfigError, LDError
from ld.layout import ANALYSIS_ROLES, PAPER_TABLES
from ld.params_check import check_params, record, schema, validate_params
from tests.conftest import REPO

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
DROP = object()


def edited(*changes: tuple[str, object]) -> dict:
    """A deep copy of the repository's params.yaml with ``(dotted key, value)`` set (``DROP``: removed)."""
    params = copy.deepcopy(PARAMS)
    for dotted, value in changes:
        *parents, last = dotted.split(".")
        node = params
        for key in parents:
            node = node[key]
        if value is DROP:
            del node[last]
        else:
            node[last] = value
    return params


def problems_of(params: dict, **kwargs) -> str:
    with pytest.raises(ConfigError) as err:
        validate_params(params, **kwargs)
    return str(err.value)


def test_the_repos_params_yaml_validates_and_comes_back_equal():
    out = validate_params(copy.deepcopy(PARAMS))
    assert out == PARAMS and list(out) == list(PARAMS)  # same values, same key order


BAD = [
    # (id, change, what the message must say)
    ("seed-bool", [("seed", True)], "seed must be an integer in [0, 4294967295], got True"),
    ("seed-fraction", [("seed", 0.5)], "seed must be an integer in [0, 4294967295], got 0.5"),
    ("seed-string", [("seed", "abc")], "seed must be an integer in [0, 4294967295], got 'abc'"),
    ("seed-negative", [("seed", -1)], "seed must be an integer in [0, 4294967295], got -1"),
    ("seed-beyond-numpy", [("seed", 2**32)], "seed must be an integer in [0, 4294967295], got 4294967296"),
    ("num_gpus-0", [("num_gpus", 0)], "num_gpus must be an integer >= 1, got 0"),
    ("profile-unknown", [("profile", "smok")], "profile: unknown profile 'smok' (did you mean 'smoke'?)"),
    ("profile-not-str", [("profile", 3)], "profile must be the name of a profile of `profiles`, got 3"),
    ("profile-missing", [("profile", DROP)], "profile is missing"),
    ("profiles-missing", [("profiles", DROP)], "profiles is missing"),
    ("profiles-empty", [("profiles", {})], "profiles must be a mapping of profile name"),
    ("top-level-unknown", [("sed", 1)], "sed: unknown key 'sed' (did you mean 'seed'?)"),
    ("ld-temperature-0", [("ld.temperature", 0)], "ld.temperature must be > 0 (a number), got 0"),
    ("ld-temperature-str", [("ld.temperature", "10")], "ld.temperature must be > 0 (a number), got '10'"),
    ("ld-loss_weight-negative", [("ld.loss_weight", -1)], "ld.loss_weight must be >= 0 (a number), got -1"),
    ("ld-teacher_cache-str", [("ld.teacher_cache", "yes")], "ld.teacher_cache must be true or false, got 'yes'"),
    ("ld-teacher_precision", [("ld.teacher_precision", "bf32")],
     "ld.teacher_precision must be one of ('auto', 'fp32', 'bf16'), got 'bf32' (did you mean 'fp32'?)"),
    ("ld-unknown", [("ld.temprature", 5)], "ld.temprature: unknown key 'temprature' (did you mean 'temperature'?)"),
    # a profile
    ("layout-unknown", [("profiles.smoke.data.layout", "kitti")],
     "profiles.smoke.data.layout must be one of ('synth', 'coco', 'voc'), got 'kitti'"),
    ("layout-near", [("profiles.coco.data.layout", "cocoo")], "got 'cocoo' (did you mean 'coco'?)"),
    ("synth-num_train-0", [("profiles.smoke.data.num_train", 0)],
     "profiles.smoke.data.num_train must be an integer >= 1, got 0"),
    ("synth-num_val-missing", [("profiles.smoke.data.num_val", DROP)], "profiles.smoke.data.num_val is missing"),
    ("synth-max_objects-fraction", [("profiles.mini.data.max_objects", 2.5)],
     "profiles.mini.data.max_objects must be an integer >= 1, got 2.5"),
    ("synth-seed-negative", [("profiles.smoke.data.seed", -1)],
     "profiles.smoke.data.seed must be an integer >= 0, got -1"),
    ("synth-image_size-pair", [("profiles.smoke.data.image_size", [96])],
     "profiles.smoke.data.image_size must be an int or [long, short] edges"),
    ("synth-image_size-small", [("profiles.smoke.data.image_size", 16)],
     "profiles.smoke.data.image_size must be an int or [long, short] edges: an int >= 32"),
    ("synth-root", [("profiles.smoke.data.root", "x")], "profiles.smoke.data.root: unknown key 'root'"),
    ("synth-max_occlusion-1", [("profiles.smoke.data.max_occlusion", 1.0)],
     "profiles.smoke.data.max_occlusion must be in (0, 1) (a number), got 1.0"),
    ("coco-root-missing", [("profiles.coco.data.root", DROP)], "profiles.coco.data.root is missing"),
    ("coco-root-empty", [("profiles.coco.data.root", "")], "profiles.coco.data.root must be the dataset's folder"),
    ("coco-image_size-one-edge", [("profiles.coco.data.image_size", [1333])],
     "profiles.coco.data.image_size must be an int or [long, short] edges (positive integers), got [1333]"),
    ("voc-image_size-str", [("profiles.voc.data.image_size", "big")], "profiles.voc.data.image_size must be an int"),
    ("voc-synth-key", [("profiles.voc.data.num_train", 5)], "profiles.voc.data.num_train: unknown key 'num_train'"),
    ("data-not-mapping", [("profiles.smoke.data", 96)], "profiles.smoke.data must be a mapping"),
    ("model-channels-0", [("profiles.smoke.model.channels", 0)],
     "profiles.smoke.model.channels must be an integer >= 1, got 0"),
    ("model-stacked_convs-negative", [("profiles.smoke.model.stacked_convs", -1)],
     "profiles.smoke.model.stacked_convs must be an integer >= 0, got -1"),
    ("model-anchor_scale-0", [("profiles.smoke.model.anchor_scale", 0)],
     "profiles.smoke.model.anchor_scale must be an integer >= 1, got 0"),
    ("schedule-not-mapping", [("profiles.smoke.schedules", {"1x": 0})],
     "profiles.smoke.schedules.1x must be {epochs: N, steps: [...]}, got 0"),
    ("schedules-empty", [("profiles.smoke.schedules", {})], "profiles.smoke.schedules must be a mapping"),
    ("schedule-epochs-0", [("profiles.smoke.schedules.1x", {"epochs": 0, "steps": []})],
     "profiles.smoke.schedules.1x.epochs must be an integer >= 1, got 0"),
    ("schedule-step-past-end", [("profiles.smoke.schedules.1x", {"epochs": 3, "steps": [2, 4]})],
     "profiles.smoke.schedules.1x.steps must be the LR steps increasing epochs in [1, epochs] (epochs: 3)"),
    ("schedule-steps-not-increasing", [("profiles.mini.schedules.2x", {"epochs": 24, "steps": [16, 16]})],
     "profiles.mini.schedules.2x.steps must be the LR steps increasing"),
    ("schedule-step-0", [("profiles.mini.schedules.1x", {"epochs": 12, "steps": [0, 8]})],
     "profiles.mini.schedules.1x.steps[0] must be an integer >= 1, got 0"),
    ("schedule-unknown-key", [("profiles.mini.schedules.1x", {"epoch": 12, "steps": [8]})],
     "profiles.mini.schedules.1x.epoch: unknown key 'epoch' (did you mean 'epochs'?)"),
    ("batch_size-fraction", [("profiles.smoke.batch_size", 8.7)],
     "profiles.smoke.batch_size must be an integer >= 1, got 8.7"),
    ("batch_size-str", [("profiles.smoke.batch_size", "eight")], "profiles.smoke.batch_size must be an integer"),
    ("batch_size-0", [("profiles.voc.batch_size", 0)], "profiles.voc.batch_size must be an integer >= 1"),
    ("batch_size-bool", [("profiles.voc.batch_size", True)], "profiles.voc.batch_size must be an integer"),
    ("base_lr-0", [("profiles.smoke.base_lr", 0)], "profiles.smoke.base_lr must be > 0 (a number), got 0"),
    ("base_lr-str", [("profiles.smoke.base_lr", "0.01")], "profiles.smoke.base_lr must be > 0 (a number)"),
    ("warmup_iters-negative", [("profiles.smoke.warmup_iters", -1)],
     "profiles.smoke.warmup_iters must be an integer >= 0, got -1"),
    ("workers-negative", [("profiles.smoke.workers", -1)], "profiles.smoke.workers must be an integer >= 0, got -1"),
    ("checkpoint_interval-0", [("profiles.smoke.checkpoint_interval", 0)],
     "profiles.smoke.checkpoint_interval must be an integer >= 1, got 0"),
    ("log_interval-0", [("profiles.smoke.log_interval", 0)], "profiles.smoke.log_interval must be an integer >= 1"),
    ("repeat-0", [("profiles.voc.repeat", 0)], "profiles.voc.repeat must be an integer >= 1, got 0"),
    ("multiscale-str", [("profiles.voc.multiscale", "no")], "profiles.voc.multiscale must be true or false"),
    ("pretrained-int", [("profiles.coco.pretrained", 1)], "profiles.coco.pretrained must be true or false, got 1"),
    ("profile-key-misspelt", [("profiles.mini.warmup_iter", 5)],
     "profiles.mini.warmup_iter: unknown key 'warmup_iter' (did you mean 'warmup_iters'?)"),
    # the runs
    ("train-not-list", [("train", "gfl_r50_2x")], "train must be a list, each item a run name"),
    ("train-item", [("train", [*PARAMS["train"], 3])], f"train[{len(PARAMS['train'])}] must be a run name"),
    ("train-twice", [("train", [*PARAMS["train"], "gfl_r18_1x"])],
     f"train[{len(PARAMS['train'])}]: 'gfl_r18_1x' is listed twice"),
    ("paper_tables-unknown", [("paper_tables", ["table_9"])], "paper_tables[0] must be one of ('gflv1_coco'"),
    ("teachers-no-sha256", [("teachers", {"gfl_r101_2x": {"checkpoint": "x.pth", "published_ap": 44.7}})],
     "teachers.gfl_r101_2x.sha256 is missing"),
    ("teachers-sha256-number", [("teachers", {"gfl_r101_2x": {"checkpoint": "x", "sha256": 12345678,
                                                              "published_ap": 44.7}})],
     "teachers.gfl_r101_2x.sha256 must be 8 to 64 hex digits"),
    ("teachers-sha256-short", [("teachers", {"gfl_r101_2x": {"checkpoint": "x", "sha256": "dd12",
                                                             "published_ap": 44.7}})],
     "teachers.gfl_r101_2x.sha256 must be 8 to 64 hex digits"),
    ("teachers-published_ap-str", [("teachers", {"gfl_r101_2x": {"checkpoint": "x", "sha256": "dd12f847",
                                                                 "published_ap": "44.7%"}})],
     "teachers.gfl_r101_2x.published_ap must be in [0, 100] (a number)"),
    ("teachers-checkpoint-missing", [("teachers", {"gfl_r101_2x": {"sha256": "dd12f847", "published_ap": 44.7}})],
     "teachers.gfl_r101_2x.checkpoint is missing"),
    ("distill-key-misspelt", [("distill.selfld_r18_1x", {"teachr": "gfl_r18_1x"})],
     "distill.selfld_r18_1x.teachr: unknown key 'teachr' (did you mean 'teacher'?)"),
    ("distill-teacher-unknown", [("distill.selfld_r18_1x.teacher", "gfl_r18_2x")],
     "distill.selfld_r18_1x.teacher must be a run of train, teachers or distill, got 'gfl_r18_2x' "
     "(did you mean 'gfl_r18_1x'?)"),
    ("distill-teacher-itself", [("distill.selfld_r18_1x.teacher", "selfld_r18_1x")],
     "distill.selfld_r18_1x.teacher: the run 'selfld_r18_1x' cannot be its own teacher"),
    ("distill-cycle", [("distill.ld_r34_gfl_r50_1x.teacher", "ld_r18_ld_r34_1x")],
     "the teachers form a cycle: ld_r34_gfl_r50_1x -> ld_r18_ld_r34_1x -> ld_r34_gfl_r50_1x"),
    ("train-and-teachers", [("teachers", {"gfl_r50_2x": {"checkpoint": "x", "sha256": "dd12f847",
                                                         "published_ap": 40.0}})],
     "train[0]: 'gfl_r50_2x' is also in teachers"),
    ("train-and-distill", [("train", [*PARAMS["train"], "selfld_r18_1x"])], "'selfld_r18_1x' is also in distill"),
    ("analysis-not-a-run", [("analysis.student", "ld_r18_gfl_r50_2x")],
     "analysis.student must be a run of train, teachers or distill, got 'ld_r18_gfl_r50_2x'"),
    ("analysis-missing-role", [("analysis", {"teacher": "gfl_r50_2x", "baseline": "gfl_r18_1x"})],
     "analysis.student is missing"),
    ("study-baseline-not-trained", [("study.baselines", ["gfl_r18_1x", "selfld_r18_1x"])],
     "study.baselines[1] must be a run of train or teachers, got 'selfld_r18_1x'"),
    ("study-student-not-distilled", [("study.students.gfl_r18_1x", {"teacher": "gfl_r50_2x"})],
     "study.students.gfl_r18_1x must be a run of distill, got 'gfl_r18_1x'"),
    ("study-wrong-teacher", [("study.students.ld_r18_gflv2_r50_1x.teacher", "gfl_r50_2x")],
     "study.students.ld_r18_gflv2_r50_1x.teacher: 'gfl_r50_2x', but distill.ld_r18_gflv2_r50_1x.teacher is "
     "'gflv2_r50_2x' (they must agree)"),
    ("study-student-key-misspelt", [("study.students.selfld_r18_1x", {"teachr": "gfl_r18_1x"})],
     "study.students.selfld_r18_1x.teachr: unknown key 'teachr' (did you mean 'teacher'?)"),
    ("study-seed-negative", [("study.seeds.smoke", [0, -1])],
     "study.seeds.smoke[1] must be an integer in [0, 4294967295], got -1"),
    ("study-seed-fraction", [("study.seeds.mini", [0.5])],
     "study.seeds.mini[0] must be an integer in [0, 4294967295], got 0.5"),
    ("study-seeds-null", [("study.seeds.smoke", None)],
     "study.seeds.smoke must be a list, each item an integer in [0, 4294967295], got None"),
    ("study-seeds-unknown-profile", [("study.seeds.minii", [0])],
     "study.seeds.minii: unknown profile 'minii' (did you mean 'mini'?)"),
    ("study-imitation-also-distilled", [("study.imitation.ld_r18_gfl_r50_1x", {"teacher": "gfl_r50_2x"})],
     "study.imitation.ld_r18_gfl_r50_1x: 'ld_r18_gfl_r50_1x' is also a run of train, teachers or distill: a run "
     "of the study only is trained by its seeds stage alone"),
    ("study-imitation-unknown-teacher", [("study.imitation.im_fitnet_r18_gfl_r50_1x.teacher", "gfl_r50_2y")],
     "study.imitation.im_fitnet_r18_gfl_r50_1x.teacher must be a run of train, teachers or distill, got "
     "'gfl_r50_2y' (did you mean 'gfl_r50_2x'?)"),
    ("study-seeded-unknown-run", [("study.seeded.smoke", ["im_fitnet_r18_gfl_r50_1x", "im_fitnit_r18_gfl_r50_1x"])],
     "study.seeded.smoke[1] must be a run of study.baselines, study.students or study.imitation, got "
     "'im_fitnit_r18_gfl_r50_1x' (did you mean 'im_fitnet_r18_gfl_r50_1x'?)"),
    ("more-seeds-unknown-run", [("study.more_seeds.mini.runs", ["gfl_r18_1x", "ld_r81_gfl_r50_1x"])],
     "study.more_seeds.mini.runs[1] must be a run of study.baselines, study.students or study.imitation, got "
     "'ld_r81_gfl_r50_1x' (did you mean 'ld_r18_gfl_r50_1x'?)"),
    ("more-seeds-not-seeded", [("study.more_seeds.smoke", {"seeds": [2], "runs": ["ld_r18_gfl_r50_1x"]})],
     "study.more_seeds.smoke.runs[0]: 'ld_r18_gfl_r50_1x' is not in study.seeded.smoke, whose other seeds it "
     "would follow"),
    ("more-seeds-taken", [("study.more_seeds.mini.seeds", [3, 2])],
     "study.more_seeds.mini.seeds[1]: 2 is already a seed of every run (study.seeds.mini)"),
    ("more-seeds-repeated", [("study.more_seeds.mini.seeds", [3, 4, 3])],
     "study.more_seeds.mini.seeds[2]: 3 is listed twice (each value once)"),
    ("more-seeds-no-runs", [("study.more_seeds.mini.runs", DROP)], "study.more_seeds.mini.runs is missing"),
    ("more-seeds-unknown-profile", [("study.more_seeds.minni", {"seeds": [3], "runs": ["gfl_r18_1x"]})],
     "study.more_seeds.minni: unknown profile 'minni' (did you mean 'mini'?)"),
]


@pytest.mark.parametrize("changes,message", [pytest.param(c, m, id=i) for i, c, m in BAD])
def test_a_bad_value_is_named_by_its_key_path(changes, message):
    assert message in problems_of(edited(*changes))


@pytest.mark.parametrize("key", ["data", "model", "schedules", "base_lr", "warmup_iters"])
def test_a_missing_profile_key_is_named(key):
    message = problems_of(edited((f"profiles.mini.{key}", DROP)))
    assert f"profiles.mini.{key} is missing: it must be " in message


def test_every_problem_is_listed_in_one_message():
    params = edited(("seed", "abc"), ("profiles.smoke.batch_size", 8.7), ("ld.loss_weight", -1),
                    ("profiles.smoke.checkpoint_interval", 0), ("distill.ld_r34_gfl_r50_1x.teacher", "nope"))
    message = problems_of(params, path="my/params.yaml")
    assert message.startswith("my/params.yaml: 5 problems:\n")
    for path in ("seed", "profiles.smoke.batch_size", "ld.loss_weight", "profiles.smoke.checkpoint_interval",
                 "distill.ld_r34_gfl_r50_1x.teacher"):
        assert f". {path} must be" in message, path


def test_one_problem_is_one_line_naming_the_file():
    message = problems_of(edited(("num_gpus", 0)), path="params.yaml")
    assert message == "params.yaml: num_gpus must be an integer >= 1, got 0"


@pytest.mark.parametrize("dotted,misspelt,meant", [
    ("profiles.smoke", "batch_sise", "batch_size"),
    ("", "num_gpu", "num_gpus"),
    ("", "paper_table", "paper_tables"),
    ("profiles.coco", "pretrain", "pretrained"),
    ("profiles.mini.data", "num_trian", "num_train"),
    ("profiles.mini.model", "stacked_conv", "stacked_convs"),
])
def test_a_misspelt_key_gets_the_nearest_known_key(dotted, misspelt, meant):
    params = copy.deepcopy(PARAMS)
    node = params
    for key in filter(None, dotted.split(".")):
        node = node[key]
    node[misspelt] = node.pop(meant) if meant in node else 1
    message = problems_of(params)
    assert f"unknown key '{misspelt}' (did you mean '{meant}'?)" in message
    where = f"{dotted}.{misspelt}" if dotted else misspelt
    assert f"{where}: unknown key" in message


def test_an_unknown_key_far_from_any_lists_the_known_keys():
    message = problems_of(edited(("profiles.smoke.model.zzz", 1)))
    assert "profiles.smoke.model.zzz: unknown key 'zzz' (known: channels, stacked_convs, anchor_scale)" in message


def test_an_integral_float_is_the_int_it_equals_and_the_input_is_left_alone():
    params = edited(("profiles.smoke.batch_size", 8.0), ("seed", 3.0), ("profiles.coco.data.image_size", [1333.0, 800]))
    out = validate_params(params)
    assert out["profiles"]["smoke"]["batch_size"] == 8 and isinstance(out["profiles"]["smoke"]["batch_size"], int)
    assert isinstance(out["seed"], int) and out["profiles"]["coco"]["data"]["image_size"] == [1333, 800]
    assert isinstance(params["seed"], float)  # the caller's dict is not changed
    out = validate_params(edited(("ld.temperature", 5), ("profiles.smoke.batch_size", None)))
    assert out["ld"]["temperature"] == 5  # a float field takes an int
    assert out["profiles"]["smoke"]["batch_size"] is None  # each row's own


def test_optional_sections_may_be_absent_or_null():
    params = {"profile": "smoke", "profiles": {"smoke": copy.deepcopy(PARAMS["profiles"]["smoke"])}}
    assert validate_params(params) == params
    nulls = edited(("teachers", None), ("ld", None), ("study.seeds", None))
    assert validate_params(nulls)["teachers"] is None


def test_a_file_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError, match="the file must be a mapping"):
        validate_params(["profile"])


def test_the_error_is_the_users_to_fix():
    with pytest.raises(LDError):
        validate_params(edited(("seed", -1)))
    with pytest.raises(ValueError):
        validate_params(edited(("seed", -1)))


def test_the_params_the_other_tests_build_validate():
    """Each params dict that tests/ builds from params.yaml (same edits) is valid."""
    smoke = PARAMS["profiles"]["smoke"]
    ddp = edited(("profiles.ddp", {**copy.deepcopy(smoke), "data": {"num_train": 8, "num_val": 4, "image_size": 64,
                                                                       "max_objects": 3, "seed": 1},
                                   "schedules": {"1x": {"epochs": 1, "steps": [1]}, "2x": {"epochs": 1, "steps": [1]}},
                                   "batch_size": 2, "warmup_iters": 1, "workers": 0}))  # test_ddp
    tiny = edited(("profiles.tiny", {**smoke, "data": {**smoke["data"], "image_size": 64},
                                     "schedules": {"1x": {"epochs": 4, "steps": [2, 3]}}, "batch_size": 4,
                                     "warmup_iters": 2}))  # test_resume
    built = [ddp, tiny, edited(("num_gpus", 8)), edited(("ld.teacher_cache", True)),  # test_upstream_recipes, cache
             edited(("ld", {"temperature": 4.0, "loss_weight": 0.5})), edited(("ld.loss_weight", 0.5))]  # configs
    for layout in ("coco", "voc"):  # test_real_data._tiny
        params = copy.deepcopy(PARAMS)
        profile = params["profiles"][layout]
        profile.update(batch_size=2, workers=0, warmup_iters=1, pretrained=False,
                       schedules={"1x": {"epochs": 1, "steps": [1]}, "2x": {"epochs": 1, "steps": [1]}},
                       model={"channels": 64, "stacked_convs": 1, "anchor_scale": 4})
        profile["data"] = {**profile["data"], "root": "/tmp/fixture", "image_size": [64, 48]}
        built.append(params)
    for params in built:
        assert validate_params(params) == params


def test_runs_replaced_without_the_analysis_runs_pass_only_when_that_check_is_off():
    """`ld paper run` and test_pipeline's imported teacher replace `train` / `distill` and keep `analysis`
    and `study`, whose runs are then gone: valid for every stage but report, seeds and bench."""
    from ld.results.paper import runs_for

    runs = runs_for(["voc"])
    paper = {**copy.deepcopy(PARAMS), "profile": "voc", "train": runs["train"], "distill": runs["distill"],
             "paper_tables": ["voc"]}
    imported = {**copy.deepcopy(PARAMS), "train": [], "teachers": {"gfl_r101_2x": {
        "checkpoint": "/tmp/gfl_r101_fpn_mstrain_2x_coco.pth", "sha256": "0123abcd", "published_ap": 44.7}},
        "distill": {"ld_r18_gfl_r101_1x": {"teacher": "gfl_r101_2x"}}}
    for params in (paper, imported):
        assert "analysis.teacher must be a run of train, teachers or distill" in problems_of(params)
        assert validate_params(params, analysis_runs=False) == params
    assert "distill.x.teacher" in problems_of({**imported, "distill": {"x": {"teacher": "y"}}}, analysis_runs=False)


@pytest.mark.parametrize("changes,message", [
    # tests/models/test_configs.py::test_out_of_range_values_stop_the_cli_with_the_field_named: the same words
    ([("ld.temperature", 0)], "ld.temperature must be > 0"),
    ([("ld.temperature", -2.0)], "ld.temperature must be > 0"),
    ([("profiles.smoke.base_lr", -0.01)], "base_lr must be > 0"),
    ([("profiles.smoke.data.image_size", [96])], "data.image_size must be an int or"),
    ([("profiles.smoke.data.layout", "kitti")], "data.layout must be one of"),
    ([("profiles.smoke.schedules.1x", 3)], "schedules.1x must be {epochs: N, steps"),
    ([("profiles.smoke.schedules.1x", {"epochs": 3, "steps": [2, 4]})], "steps increasing epochs in [1, epochs]"),
])
def test_the_messages_keep_the_words_the_cli_tests_look_for(changes, message):
    assert message in problems_of(edited(*changes))


def test_the_schema_mirrors_the_code():
    from ld.data.synth import SynthSpec
    from ld.results.paper import TABLES

    assert PAPER_TABLES == tuple(TABLES)  # the names params.yaml chooses from, and the tables' specs
    assert set(ANALYSIS_ROLES) == set(PARAMS["analysis"])
    synth_fields = {f.name for f in dataclasses.fields(SynthSpec)}
    _, problems = check_params(edited(("profiles.smoke.data", {name: 1 for name in synth_fields})))
    assert not any("unknown key" in p for p in problems), problems  # every SynthSpec field is a known data key
    assert isinstance(schema(), type(record({})))


@pytest.mark.parametrize("overrides", [["seed=1"], ["ld.loss_weight=0.5", "profile=mini"],
                                       ["profiles.smoke.base_lr=0.01"], ["study.seeds.smoke=[0,1,2]"]])
def test_dvc_exp_run_set_param_keeps_every_explanation(overrides, tmp_path):
    """``dvc exp run -S`` rewrites params.yaml (DVC's apply_overrides, ruamel round trip): a comment after a
    block list's items would go with the list; every comment line of params.yaml must survive."""
    import re

    from dvc.utils.hydra import apply_overrides

    def comments(text):
        return [m.group(0).strip() for m in (re.search(r"#.*$", line) for line in text.splitlines()) if m]

    before = (REPO / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(before)
    apply_overrides(tmp_path / "params.yaml", overrides)
    after = comments((tmp_path / "params.yaml").read_text())
    assert [c for c in comments(before) if c not in after] == []
    assert len(comments(before)) > 50
