"""Training and evaluation over mmengine."""
from __future__ import annotations

import contextlib
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


# The registries whose ``type`` names a config dict's class, searched in this order (mmdet's, whose parents
# are mmengine's): what :func:`option_problem` asks which keywords a dict's class takes.
REGISTRIES = ("MODELS", "TASK_UTILS", "OPTIMIZERS", "OPTIM_WRAPPERS", "PARAM_SCHEDULERS", "DATASETS",
              "DATA_SAMPLERS", "TRANSFORMS", "METRICS", "EVALUATOR", "LOOPS", "HOOKS", "VISUALIZERS",
              "VISBACKENDS", "LOG_PROCESSORS")
# Keys of a typed dict that its builder reads, not the class (mmengine's build_optim_wrapper)
BUILDER_KEYS = {"OptimWrapper": {"constructor", "paramwise_cfg"}, "AmpOptimWrapper": {"constructor", "paramwise_cfg"}}


def keywords_taken(cls) -> set[str] | None:
    """The keyword arguments a class (or function) takes: its ``__init__``'s named parameters and those of
    the classes it passes ``**kwargs`` on to, up to ``torch.nn.Module`` (which takes none). None: any."""
    import inspect

    import torch

    if not inspect.isclass(cls):
        params = inspect.signature(cls).parameters.values()
        return None if any(p.kind is p.VAR_KEYWORD for p in params) else {p.name for p in params}
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass in (torch.nn.Module, object):
            return names
        if "__init__" not in vars(klass):
            continue
        params = list(inspect.signature(vars(klass)["__init__"]).parameters.values())[1:]
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return names


def _class_of(type_) -> Any:
    """The class a config dict's ``type`` names (a class or a registered name), None if no registry knows it."""
    if not isinstance(type_, str):
        return type_
    import mmdet.registry

    for name in REGISTRIES:
        with contextlib.suppress(Exception):  # a name that lazy import cannot resolve
            found = getattr(mmdet.registry, name).get(type_)
            if found is not None:
                return found
    return None


def _dataloader_keys() -> set[str]:
    """What mmengine's ``Runner.build_dataloader`` passes on to ``torch.utils.data.DataLoader``, and reads."""
    import torch

    return keywords_taken(torch.utils.data.DataLoader) | {"sampler", "batch_sampler", "collate_fn", "dataset"}


def option_problem(cfg, key: str) -> str | None:
    """Why the dotted ``--cfg-options`` key cannot be merged into ``cfg``, None if it can.

    Each part of the key must name a key of its dict (or an index of its list), or a keyword that the
    dict's class (its ``type``, looked up in mmdet's registries) takes, or a ``DataLoader`` argument in a
    ``*_dataloader``: anything else would be added where nothing reads it, or break a constructor after
    minutes of work. A dict whose class is unknown takes any key."""
    node, path = cfg, []
    for part in key.split("."):
        where = ".".join(path) or "the config"
        if isinstance(node, (list, tuple)):
            if not (part.isdigit() and int(part) < len(node)):
                return f"{where} is a list of {len(node)}: give an index 0..{len(node) - 1}, not '{part}'"
            node, path = node[int(part)], path + [part]
            continue
        if not hasattr(node, "keys"):  # a dict, ConfigDict or the Config itself
            return f"{where} is {node!r}, not a dict: it has no key '{part}'"
        if part in node:
            node, path = node[part], path + [part]
            continue
        if not path:
            taken = None
        elif "type" in node:
            cls = _class_of(node["type"])
            if cls is None:
                return None  # a class no registry knows: mmengine will say
            taken = keywords_taken(cls)
            if taken is None:
                return None
            taken |= BUILDER_KEYS.get(getattr(cls, "__name__", ""), set())
        elif path[-1].endswith("_dataloader"):
            taken = _dataloader_keys()
        else:
            taken = set()
        if taken is not None and part in taken:
            return None  # a keyword its class takes: added, and read
        choices = sorted(set(node) | (taken or set()))
        near = difflib.get_close_matches(part, choices, n=1)
        hint = f"did you mean '{near[0]}'?" if near else (
            f"it has: {', '.join(sorted(map(str, node)))}" if path and len(node) <= 12 else
            "check the spelling against the config")
        return f"{where} has no key '{part}'" + (
            f" and its {node['type']} takes no such argument" if path and "type" in node else "") + f" ({hint})"
    return None


def merge_options(cfg, options: dict[str, Any] | None, config: str | Path) -> None:
    """Merge ``--cfg-options`` (dotted keys) into ``cfg`` in place, as mmdet's ``tools/train.py`` and
    ``tools/test.py`` do; a key that the config lacks and its class does not take (a typo:
    ``optim_warpper.optimizer.lr``, ``model.bbox_head.nosuch=3``, ``model.test_cfg.nosuch=1``) is a
    one-line ConfigError naming it (:func:`option_problem`), before any work."""
    if not options:
        return
    for key in options:
        problem = option_problem(cfg, key)
        if problem:
            raise ConfigError(f"--cfg-options {key}: in {config}, {problem}")
    cfg.merge_from_dict(options)
