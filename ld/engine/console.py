"""What a training run prints: mmengine's log line every log interval (losses, lr, ETA) and errors.

Everything else goes only to the run's log file (``<work_dir>/<timestamp>/<timestamp>.log``, mmengine's
``FileHandler``, which keeps every line): the environment and config dumps, the hooks, checkpoint saves,
mmengine's warnings, Python warnings raised while the run builds and trains, and what libraries print
(pycocotools' "loading annotations into memory..."). Under DDP, mmengine's console of ranks > 0 already
shows errors only, and only rank 0 has the log file.
"""
from __future__ import annotations

import contextlib
import gc
import io
import logging
from collections.abc import Iterator

from mmengine.runner import EpochBasedTrainLoop, Runner

# How mmengine's LogProcessor starts the lines LoggerHook writes every log interval (train and val)
INTERVAL_LINE = ("Epoch(", "Iter(")


def on_console(record: logging.LogRecord) -> bool:
    """Whether a record of the run's logger is shown on the console: errors and the interval lines."""
    return record.levelno >= logging.ERROR or record.getMessage().startswith(INTERVAL_LINE)


class _ToLogger(io.TextIOBase):
    """A text stream whose lines become INFO records of ``logger`` (for ``print`` inside the run)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.logger.info(line)
        return len(text)


class QuietRunner(Runner):
    """mmengine's Runner whose console handler passes :func:`on_console` records only, and whose log file
    also receives Python warnings (inside :func:`warnings_to_log`) and what is printed while it trains."""

    def build_logger(self, log_level="INFO", log_file=None, **kwargs):
        logger = super().build_logger(log_level, log_file, **kwargs)
        files = [h for h in logger.handlers if isinstance(h, logging.FileHandler)]
        for handler in logger.handlers:
            if handler not in files and on_console not in handler.filters:
                handler.addFilter(on_console)
        logging.getLogger("py.warnings").handlers += files
        return logger

    def train(self):
        collect_garbage_again()
        with contextlib.redirect_stdout(_ToLogger(self.logger)):
            return super().train()

    def test(self):
        collect_garbage_again()
        return super().test()

    def build_val_loop(self, loop):
        """None where the training never validates (``val_begin`` after its last epoch, as ld.profiles sets
        it): the validation dataloader and metric are not built for nothing. Any other run: mmengine's."""
        train = self._train_loop
        if isinstance(train, EpochBasedTrainLoop) and train.val_begin > train.max_epochs:
            return None
        return super().build_val_loop(loop)


def collect_garbage_again() -> None:
    """Turn Python's cyclic garbage collector back on where ``ld`` turned it off for the start-up
    (:func:`ld.cli.main`): the start-up's objects (the imported modules, the built model), which live as long
    as the process, are frozen out of its scans first, so the collections of a long run stay short."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


@contextlib.contextmanager
def warnings_to_log() -> Iterator[None]:
    """Inside: Python warnings go to the log file of the :class:`QuietRunner` built inside (dropped until it
    has one), not to stderr; logging's state is restored on the way out."""
    py_warnings = logging.getLogger("py.warnings")
    saved = py_warnings.handlers, py_warnings.propagate
    py_warnings.handlers, py_warnings.propagate = [logging.NullHandler()], False
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        py_warnings.handlers, py_warnings.propagate = saved
