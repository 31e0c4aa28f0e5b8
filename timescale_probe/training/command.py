"""``tsprobe train`` as an analysis: :class:`TrainOptions` (every flag, checked before any work),
:func:`run_train` and :class:`LMTrainResult` (its :meth:`~LMTrainResult.save` draws the
training curves beside the checkpoint)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..analysis import Result, option
from ..analysis.options import device_option, seed_option, threads_option
from ..corpora.options import CorpusOptions
from ..errors import OptionError
from .config import ARCHS, OPTIMIZERS, PROFILES, default_mts_spec, train_config

if TYPE_CHECKING:
    from .loop import TrainedLM

__all__ = ["TrainOptions", "LMTrainResult", "run_train", "OVERRIDES"]

#: the TrainConfig fields a command line may override (None: the profile's value)
OVERRIDES = ("epochs", "seed", "optimizer", "lr", "batch_size", "bptt", "patience", "min_epochs")
MTS_SPEC_HELP = ("MTS spec for arch mts: a preset (paper-lm), a JSON file or text like 'fixed:3,4;ig:0.56,1;free' "
                 "(default: paper-lm, scaled to the layer sizes).")


def _checkpoint_path(path: Path) -> Path:
    """A checkpoint file path whose folder can be made and written (checked before any work)."""
    from ..fileio import check_out_dir

    if path.is_dir():
        raise OptionError(f"out must be a checkpoint file path (X.pt), but {path} is a directory", param="out")
    check_out_dir(path.parent if str(path.parent) else Path("."))
    return path


@dataclass(frozen=True, kw_only=True)
class TrainOptions(CorpusOptions):
    """Options of ``tsprobe train`` (the corpus fields come from :class:`CorpusOptions`)."""

    out: Path = option(help="Checkpoint to write (X.pt); X.json (model card), X.metrics.csv, X.resume.pt and "
                       "X.curves.pdf are written beside it.", check=_checkpoint_path, short="-o", metavar="X.pt")
    arch: str = option("baseline", "baseline (AWD-LSTM) or mts (multi-timescale biases, frozen).", choices=ARCHS)
    mts_spec: Optional[str] = option(None, MTS_SPEC_HELP)
    profile: str = option("small", "Sizes and budget: " + PROFILES.help() + ".", check=PROFILES.check)
    epochs: Optional[int] = option(None, "Epoch budget (default: the profile's).", ge=1)
    seed: Optional[int] = seed_option(None, "Random seed (default: the profile's: 141 PTB, 1882 WikiText-2).")
    optimizer: str = option("sgd", "sgd (AWD NT-ASGD, lr 30) or adam (lr 2e-3).", choices=OPTIMIZERS)
    lr: Optional[float] = option(None, "Learning rate (default: the profile's for sgd, 2e-3 for adam).", gt=0)
    batch_size: Optional[int] = option(None, "Training batch size (default: the profile's).", ge=1)
    bptt: Optional[int] = option(None, "Mean sequence length (default: the profile's).", ge=10)
    patience: Optional[int] = option(None, "Stop after this many epochs without a better validation loss.", ge=1)
    min_epochs: Optional[int] = option(None, "Never stop early before this epoch.", ge=0)
    resume: bool = option(False, "Continue from X.resume.pt (same options; epochs may grow).")
    device: str = device_option()
    threads: Optional[int] = threads_option()
    progress: bool = option(True, "Show a progress bar.")

    def check(self) -> None:
        train_config(self.profile, "", self.train_overrides())  # the recipe's own bounds (e.g. bptt >= 10)
        default_mts_spec(self.arch, self.mts_spec)  # spec syntax; a constraining spec needs arch mts

    def train_overrides(self) -> dict[str, Any]:
        """The training settings given (the profile supplies the rest)."""
        return {k: getattr(self, k) for k in OVERRIDES if getattr(self, k) is not None}


@dataclass(kw_only=True)
class LMTrainResult(Result):
    """A finished ``train`` run: ``trained`` (:class:`~.loop.TrainedLM`: card, metrics, per-bin tables).
    The checkpoint and its companions are written while training (so a run can resume);
    :meth:`save` adds the training curves beside them."""

    command = "train"

    trained: TrainedLM
    corpus_name: str = ""

    def __post_init__(self) -> None:
        out = Path(self.trained.out)
        arch = self.trained.card.get("arch", "")
        self.figures = {out.with_suffix(".curves.pdf").name: lambda: _curves(self.trained, out, arch, self.corpus_name)}
        self.summary = {k: self.trained.card.get(k) for k in ("epochs", "best_epoch", "best_valid_ppl", "valid_ppl",
                                                               "test_ppl", "wall_time_s", "stopped_early")}

    def save(self, out: str | Path | None = None, *, figures: bool = True) -> Path:
        """Draw the figures into ``out`` (default: the checkpoint's folder); returns the folder."""
        from ..fileio import save_figure

        folder = Path(self.trained.out).parent if out is None else Path(out)
        if figures:
            for name, build in self.figures.items():
                save_figure(build(), folder / name)
        return folder

    def written_files(self, figures: bool = True) -> list[str]:
        from .config import companion_paths

        out = Path(self.trained.out)
        names = [out.name] + [p.name for p in companion_paths(out).values()]
        return names + (list(self.figures) if figures else [])


def _curves(trained: TrainedLM, out: Path, arch: str, corpus_name: str):
    from ..plots.lm import plot_training_curves

    return plot_training_curves(trained.metrics, title=f"{out.name}: {arch} on {corpus_name}")


def run_train(opts: TrainOptions, *, log: Callable[[str], None] | None = None, progress: Any = None) -> LMTrainResult:
    """Train as ``opts`` say (threads, device, corpus, then the recipe of :mod:`.loop`).
    ``progress``: a :class:`~timescale_probe.progress.Progress` (default: ``opts.progress``)."""
    from ..fileio import resolve_device, use_threads
    from .loop import command_line, train_language_model

    use_threads(opts.threads)
    device = resolve_device(opts.device)
    corpus = opts.load_corpus()
    if log is not None:
        log(f"training {opts.arch} ({opts.profile} profile) on {corpus.name}: {corpus.tokens('train').numel():,} train "
            f"tokens, vocabulary {corpus.vocab_size:,}, device {device}")
    trained = train_language_model(corpus, opts.out, arch=opts.arch, profile=opts.profile, mts_spec=opts.mts_spec,
                                   train_overrides=opts.train_overrides(), device=device, resume=opts.resume,
                                   progress=opts.progress if progress is None else progress, log=log,
                                   command=command_line(), bins_from=opts.bins_from, bin_edges=opts.edges)
    inputs = [p for p in [opts.vocab_file] if p is not None]
    return LMTrainResult(options=opts, trained=trained, corpus_name=corpus.name, seed=trained.card.get("seed"),
                         inputs=inputs)

