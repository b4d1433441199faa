"""Inference speed of a detector: the student alone, never a teacher."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ld.checkpoint import require_files
from ld.engine.evaluate import set_nms
from ld.models.distiller import build_student


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark_fps(config: str | Path, checkpoint: str | Path, num_images: int = 50, warmup: int = 5,
                  batch_size: int = 1, nms: str | None = None, device: str | None = None) -> dict[str, Any]:
    """Frames per second of the student of ``config`` on its test split.

    ``model_fps`` times the network alone (preprocessed batch in, raw head outputs out);
    ``end_to_end_fps`` times loading, preprocessing, the network and post-processing (decoding and
    NMS) together. The first ``warmup`` batches are not timed.
    """
    from mmengine.config import Config
    from mmengine.runner import Runner

    require_files(config, checkpoint)
    cfg = Config.fromfile(str(config))
    set_nms(cfg, nms)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = build_student(cfg, checkpoint, device=dev)
    loader_cfg = model.cfg.test_dataloader.copy()
    loader_cfg.batch_size = batch_size
    loader = Runner.build_dataloader(loader_cfg)

    end_to_end, network, images, shape = [], [], 0, None
    with torch.no_grad():
        batches = iter(loader)
        for step in range(warmup + max(1, num_images // batch_size)):
            start = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                batches = iter(loader)
                batch = next(batches)
            data = model.data_preprocessor(batch, False)
            _sync(dev)
            net_start = time.perf_counter()
            model(data["inputs"], data["data_samples"], mode="tensor")
            _sync(dev)
            net_end = time.perf_counter()
            model(**data, mode="predict")  # the post-processed path, as a user runs it
            _sync(dev)
            if step >= warmup:
                network.append(net_end - net_start)
                # end to end: everything but the extra raw forward above
                end_to_end.append(time.perf_counter() - start - (net_end - net_start))
                images += data["inputs"].shape[0]
                shape = tuple(data["inputs"].shape[-2:])
    return {"device": str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev),
            "torch_threads": torch.get_num_threads(), "batch_size": batch_size, "input_size": list(shape),
            "nms": model.cfg.model.test_cfg.nms.type, "images": images,
            "model_fps": round(images / sum(network), 2), "end_to_end_fps": round(images / sum(end_to_end), 2)}
