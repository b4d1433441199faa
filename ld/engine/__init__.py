"""Training and evaluation over mmengine."""
from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

from ld.errors import ConfigError


def unformatted(cfg):
    """A copy of ``cfg`` whose text is not run through yapf, for mmengine's Runner: it logs the text, dumps
    it into the run folder and into every checkpoint's meta, ~0.1 s a time on 2 cores. The exported
    ``config.py`` and the run digest keep the formatted text."""
    cfg = copy.deepcopy(cfg)
    object.__setattr__(cfg, "_format_python_code", False)  # mmengine's Config(format_python_code=False)
    return cfg


def merge_options(cfg, options: dict[str, Any] | None, config: str | Path) -> None:
    """Merge ``--cfg-options`` (dotted keys) into ``cfg`` in place, as mmdet's ``tools/train.py`` and
    ``tools/test.py`` do; a key whose first part the config lacks (a typo: ``optim_warpper.optimizer.lr``)
    is a ConfigError (mmengine would add it, and nothing would read it)."""
    if not options:
        return
    for key in options:
        top = key.split(".", 1)[0]
        if top not in cfg:
            near = difflib.get_close_matches(top, list(cfg.keys()), n=1)
            hint = f"did you mean '{near[0]}'?" if near else "check the spelling against the config"
            raise ConfigError(f"--cfg-options {key}: {config} has no key '{top}' ({hint})")
    cfg.merge_from_dict(options)
