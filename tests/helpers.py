"""Helpers shared by the tests: paths and two ways to run ``tsprobe``.

Importable as ``from helpers import ...`` from any test (``tests/conftest.py`` puts this folder on
``sys.path``), whatever the current directory is.
"""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
DATA = TESTS / "data"
SHARED = Path(os.environ.get("TSPROBE_SHARED", ROOT.parent / "shared"))


@pytest.fixture(name="one_thread")
def one_thread_fixture():
    """The ``one_thread`` fixture: the test runs with one torch thread (bit-stable CPU numbers),
    the count restored afterwards. A test module gets it with ``from helpers import one_thread_fixture``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def run_cli(*args, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``tsprobe`` in a subprocess (the real entry point, as a user would; about 2 s each)."""
    return subprocess.run(
        [sys.executable, "-m", "timescale_probe", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=timeout,
    )


def run_cli_inprocess(*args, cwd: Path | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``tsprobe`` in this process through ``timescale_probe.cli.main(argv)``.

    Returns what :func:`run_cli` returns (``returncode``, ``stdout``, ``stderr``): the exit code of
    ``SystemExit`` (0 when ``main`` returns), and for an exception that escapes ``main`` its
    traceback on stderr with code 1, as the interpreter would print it. torch's thread count (which
    ``--threads`` sets) is restored afterwards. ``timeout`` is accepted for symmetry and ignored.
    """
    from timescale_probe.cli import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    code = 0
    with contextlib.ExitStack() as stack:
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
        except Exception:  # noqa: BLE001 - reported like an uncaught exception of the real process
            traceback.print_exc()
            code = 1
    torch = sys.modules.get("torch")
    if torch is not None and threads is not None:
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(["tsprobe", *argv], code, out.getvalue(), err.getvalue())


def write_tiny_lm(root: Path, lines: tuple[int, int, int]) -> tuple[Path, Path]:
    """A tiny corpus directory under ``root`` (30 words, 5 of them frequent; ``lines`` = train,
    valid, test line counts) and a tiny MTS checkpoint (``root/tiny.pt``) on its vocabulary."""
    import numpy as np
    import torch

    from timescale_probe.checkpoints import save_checkpoint
    from timescale_probe.corpora import load_corpus
    from timescale_probe.models import LanguageModel, LMConfig
    from timescale_probe.timescales import parse_mts_spec

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    p = np.r_[np.full(5, 0.12), np.full(25, 0.4 / 25)]
    for split, n in zip(("train", "valid", "test"), lines):
        text = [" ".join(rng.choice(words, size=rng.integers(3, 12), p=p)) for _ in range(n)]
        (root / f"{split}.txt").write_text("\n".join(text) + "\n")
    corpus = load_corpus(str(root))
    torch.manual_seed(0)
    spec = parse_mts_spec("fixed:3,4;ig:0.56;free").to_dict()
    model = LanguageModel(LMConfig(vocab_size=corpus.vocab_size, emb_size=8, layer_sizes=(12, 20, 8), mts_spec=spec),
                          vocab=corpus.vocab)
    ckpt = root / "tiny.pt"
    save_checkpoint(ckpt, model.to_stack())
    return root, ckpt
