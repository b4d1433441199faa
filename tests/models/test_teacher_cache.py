"""The teacher soft-target cache (offline LD): storage, refusal of stale caches, and a distiller that
reads it giving the same losses as online LD without running the teacher again."""
from __future__ import annotations

import copy

import pytest
import torch

from ld.errors import ConfigError
from ld.models.teacher_cache import StaleCacheError, TeacherCache, check_deterministic

FINGERPRINT = {"teacher_sha256": "a" * 64, "pipeline": [{"type": "Resize", "scale": [96, 96]}], "regions": {}}


# ---------------------------------------------------------------------------------------------------------------
# storage, on hand-made tensors
# ---------------------------------------------------------------------------------------------------------------


def test_an_entry_is_a_miss_then_a_float16_hit(tmp_path):
    cache = TeacherCache(tmp_path, FINGERPRINT)
    index, reg = torch.tensor([3, 7, 20]), torch.randn(3, 68)
    key = cache.key(12, True, "horizontal", (96, 96))
    assert key == "12_horizontal_96x96" and cache.key(12, False, None, (96, 96)) == "12_noflip_96x96"
    assert cache.get(key, index) is None and cache.misses == 1
    stored = cache.put(key, index, reg)
    entry = TeacherCache(tmp_path, FINGERPRINT).get(key, index)  # a new process sees the same entry
    assert entry is not None and entry.reg.dtype == torch.float16 and entry.cls is None
    torch.testing.assert_close(entry.reg, reg.half())
    torch.testing.assert_close(stored.reg, entry.reg)
    assert cache.stats()["files"] == 1 and cache.stats()["bytes"] > 3 * 68 * 2


def test_a_cache_of_another_teacher_or_augmentation_is_refused(tmp_path):
    TeacherCache(tmp_path, FINGERPRINT)
    with pytest.raises(StaleCacheError, match=r"another teacher_sha256.*delete"):
        TeacherCache(tmp_path, {**FINGERPRINT, "teacher_sha256": "b" * 64})
    with pytest.raises(StaleCacheError, match="another pipeline"):
        TeacherCache(tmp_path, {**FINGERPRINT, "pipeline": [{"type": "Resize", "scale": [128, 128]}]})
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(StaleCacheError, match="meta.json is not JSON"):
        TeacherCache(tmp_path, FINGERPRINT)


def test_an_entry_for_other_locations_is_refused_not_used(tmp_path):
    cache = TeacherCache(tmp_path, FINGERPRINT)
    key = cache.key(1, False, None, (96, 96))
    cache.put(key, torch.tensor([1, 2, 3]), torch.randn(3, 68))
    with pytest.raises(StaleCacheError, match="holds 3 locations, but this step needs 2 others"):
        cache.get(key, torch.tensor([1, 2]))
    (tmp_path / f"{key}.pt").write_bytes(b"truncated")
    with pytest.raises(StaleCacheError, match="cannot be read"):
        cache.get(key, torch.tensor([1, 2, 3]))


@pytest.mark.parametrize("step", [
    {"type": "RandomResize", "scale": [(96, 96), (128, 128)]},
    {"type": "Resize", "scale": [(96, 96), (128, 128)]},
    {"type": "RandomCrop", "crop_size": (64, 64)},
    {"type": "Resize", "scale": (96, 96), "ratio_range": (0.5, 2.0)},
])
def test_random_augmentation_is_refused(step):
    pipeline = [{"type": "LoadImageFromFile"}, step, {"type": "RandomFlip", "prob": 0.5}, {"type": "PackDetInputs"}]
    with pytest.raises(ConfigError, match="deterministic training pipeline"):
        check_deterministic(pipeline)
    check_deterministic([pipeline[0], {"type": "Resize", "scale": (96, 96), "keep_ratio": True}, *pipeline[2:]])


class _ScaledTeacher:
    """A stand-in teacher whose flattened head outputs are its inputs scaled: class logits ``x[:, :2]``, box
    logits ``x`` and ``-x`` (so a row of the output is known from the image's pixels)."""

    def extract_feat(self, x):
        return x

    def bbox_head(self, x):
        return [x[:, :2] * 0.5], [torch.cat([x, -x], dim=1) * 3.0]


def test_cached_rows_are_the_teachers_outputs_at_each_images_needed_anchors(tmp_path):
    from types import SimpleNamespace

    from ld.models.distiller import CachedTeacherOutputs, teacher_forward

    teacher = _ScaledTeacher()
    inputs = torch.randn(3, 3, 4, 5)  # 3 images of 4 x 5 anchors
    needed = torch.zeros(3, 20, dtype=torch.bool)
    needed[0, [19, 1, 7]] = True
    needed[2, [4, 0]] = True  # image 1 needs no anchor at all
    samples = [SimpleNamespace(metainfo={"img_id": i, "flip": False}) for i in range(3)]
    t_cls, t_reg = teacher_forward(teacher, inputs)  # (3, 20, 2), (3, 20, 6)
    expected_cls = torch.where(needed[..., None], t_cls.half().float(), torch.zeros(()))
    expected_reg = torch.where(needed[..., None], t_reg.half().float(), torch.zeros(()))
    cache = TeacherCache(tmp_path, FINGERPRINT)
    for _ in ("misses: stored", "hits: read back"):
        cls, reg = CachedTeacherOutputs(teacher, inputs, samples, cache).rows(needed, with_cls=True)
        assert torch.equal(cls, expected_cls) and torch.equal(reg, expected_reg)
    assert cache.misses == 3 and cache.hits == 3
    stored = [cache.get(cache.key(i, False, None, (4, 5)), needed[i].nonzero()[:, 0]) for i in range(3)]
    assert [entry.index.tolist() for entry in stored] == [[1, 7, 19], [], [0, 4]]


# ---------------------------------------------------------------------------------------------------------------
# the distiller with a cache
# ---------------------------------------------------------------------------------------------------------------



def _models(params, tmp_path, row="ld_full_r18_gfl_r50_1x", teacher_seed=0):
    """The same student (same initial weights) with online LD and with offline LD, and the cache folder."""
    from mmdet.registry import MODELS

    from ld.engine.train import build_train_config, export_initial

    teacher_run = params["distill"][row]["teacher"]
    teacher = export_initial(f"pipelines/configs/{teacher_run}.py", params, tmp_path / f"t{teacher_seed}" / teacher_run,
                             profile="smoke", seed=teacher_seed)
    models = []
    for cached in (False, True):
        p = copy.deepcopy(params)
        p["ld"]["teacher_cache"] = cached
        cfg = build_train_config(f"pipelines/configs/{row}.py", p, profile="smoke", teacher_dir=teacher,
                                 work_root=tmp_path / "work")
        torch.manual_seed(0)
        models.append(MODELS.build(cfg.model).eval())  # eval: BN statistics fixed, steps comparable
    return models[0], models[1], cfg


def _batch(model, flip=False):
    from mmdet.testing import demo_mm_inputs

    torch.manual_seed(3)
    data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 96)] * 2, num_items=[3, 2], num_classes=3,
                          use_box_type=False)
    for i, sample in enumerate(data["data_samples"]):
        sample.set_metainfo({"img_id": 100 + i, "flip": flip, "flip_direction": "horizontal" if flip else None})
    return model.data_preprocessor(data, True)


def _args(batch):
    return {"batch_inputs": batch["inputs"], "batch_data_samples": batch["data_samples"]}


def _count_teacher_calls(model):
    calls = []
    original = model.teacher.extract_feat
    model.teacher.extract_feat = lambda x: calls.append(x.shape[0]) or original(x)
    return calls


@pytest.mark.usefixtures("repo_root")
def test_offline_ld_gives_online_losses_and_runs_the_teacher_once_per_image(params, tmp_path):
    online, offline, _ = _models(params, tmp_path)
    assert online.cache is None and offline.cache is not None
    batch = _batch(online)
    calls = _count_teacher_calls(offline)
    expected = online.loss(**_args(batch))
    first = offline.loss(**_args(batch))      # misses: the teacher runs on both images, targets stored
    second = offline.loss(**_args(batch))     # hits: the teacher does not run
    assert calls == [2] and offline.cache.hits == 2 and offline.cache.misses == 2
    for name in ("loss_ld", "loss_ld_vlr", "loss_kd"):
        assert first[name].item() == second[name].item(), name  # the same float16 targets both times
        assert first[name].item() == pytest.approx(expected[name].item(), rel=2e-3), name
    stats = offline.cache.stats()
    assert stats["files"] == 2 and stats["bytes"] == offline.cache.bytes_written  # on disk: what was written
    flipped = _batch(online, flip=True)  # another flip is another entry: a miss, not a wrong hit
    offline.loss(**_args(flipped))
    assert calls == [2, 2] and offline.cache.stats()["files"] == 4


@pytest.mark.usefixtures("repo_root")
def test_changed_ground_truth_is_refused(params, tmp_path):
    _, offline, _ = _models(params, tmp_path)
    batch = _batch(offline)
    offline.loss(**_args(batch))
    batch["data_samples"][0].gt_instances.bboxes = batch["data_samples"][0].gt_instances.bboxes * 0.5
    with pytest.raises(StaleCacheError, match="ground truth, the anchors or the augmentation changed"):
        offline.loss(**_args(batch))


@pytest.mark.usefixtures("repo_root")
def test_a_retrained_teacher_gets_a_new_cache_and_an_explicit_stale_folder_is_refused(params, tmp_path):
    from mmdet.registry import MODELS

    _, offline, cfg = _models(params, tmp_path, teacher_seed=0)
    _, offline_new, cfg_new = _models(params, tmp_path, teacher_seed=1)
    assert cfg.model.teacher_cache.dir != cfg_new.model.teacher_cache.dir  # automatic folders never collide
    stale = copy.deepcopy(cfg_new.model)
    stale.teacher_cache.dir = cfg.model.teacher_cache.dir  # the old teacher's folder, the new teacher
    with pytest.raises(StaleCacheError, match="another teacher_sha256"):
        MODELS.build(stale)
    changed = copy.deepcopy(cfg.model)  # the old teacher's folder, another augmentation
    changed.teacher_cache.pipeline = [*changed.teacher_cache.pipeline[:1], {"type": "Resize", "scale": (64, 64)},
                                      *changed.teacher_cache.pipeline[2:]]
    with pytest.raises(StaleCacheError, match="another pipeline"):
        MODELS.build(changed)
    random_aug = copy.deepcopy(cfg.model)
    random_aug.teacher_cache.pipeline.insert(2, {"type": "RandomCrop", "crop_size": (64, 64)})
    with pytest.raises(ConfigError, match="online LD"):
        MODELS.build(random_aug)
