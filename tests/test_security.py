"""Malicious and broken checkpoint files: nothing in them runs, and the user gets one clear line.

Each malicious payload would create a sentinel file if it ran; after loading we assert the
sentinel does not exist. Payloads are written as raw pickle opcodes (so that the exact global,
e.g. ``os.system``, appears) or with ``__reduce__`` objects, into both torch serialisations.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch

from timescale_probe.checkpoints import load_checkpoint, read_card
from timescale_probe.checkpoints.safe_unpickle import LEGACY_MAGIC_NUMBER, load_torch_file_restricted
from timescale_probe.errors import CheckpointError, InputError, UnsafeCheckpointError

# ----------------------------------------------------------------------------- building pickles by hand


def g(module: str, name: str) -> bytes:
    """GLOBAL opcode: push ``module.name`` (what an unpickler would import)."""
    return f"c{module}\n{name}\n".encode()


def s(text: str) -> bytes:
    """UNICODE opcode: push a string."""
    return b"V" + text.encode("raw_unicode_escape") + b"\n"


def call(func: bytes, *args: bytes) -> bytes:
    """MARK args TUPLE REDUCE: call ``func(*args)``."""
    return func + b"(" + b"".join(args) + b"tR"


def lst(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"l"


def zip_torch_file(path: Path, data_pkl: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
    return path


def legacy_torch_file(path: Path, main_pkl: bytes) -> Path:
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    path.write_bytes(pickle.dumps(LEGACY_MAGIC_NUMBER, protocol=2) + pickle.dumps(1001, protocol=2)
                     + pickle.dumps(sys_info, protocol=2) + main_pkl + pickle.dumps([], protocol=2))
    return path


class Reduce:
    """An object that pickles as ``f(*args)``."""

    def __init__(self, f, args):
        self.f, self.args = f, args

    def __reduce__(self):
        return (self.f, self.args)


def payloads(sentinel: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (pickle bytes without STOP, text the error must contain)."""
    cmd = f"touch {sentinel}"
    py = f"open({str(sentinel)!r}, 'w').close()"
    return {
        "os.system": (call(g("os", "system"), s(cmd)), "forbidden global 'os.system'"),
        "posix.system": (call(g("posix", "system"), s(cmd)), "forbidden global 'posix.system'"),
        "subprocess.Popen": (call(g("subprocess", "Popen"), lst(s("touch"), s(str(sentinel)))), "'subprocess.Popen'"),
        "subprocess.check_output": (call(g("subprocess", "check_output"), lst(s("touch"), s(str(sentinel)))),
                                    "'subprocess.check_output'"),
        "builtins.eval": (call(g("builtins", "eval"), s(py)), "'builtins.eval'"),
        "builtins.exec (py2 name)": (call(g("__builtin__", "exec"), s(py)), "'builtins.exec'"),
        "getattr(__import__('os'), 'system')": (
            call(call(g("builtins", "getattr"), call(g("builtins", "__import__"), s("os")), s("system")), s(cmd)),
            "'builtins.__import__'"),
        "importlib.import_module": (
            call(call(g("builtins", "getattr"), call(g("importlib", "import_module"), s("os")), s("system")), s(cmd)),
            "'importlib.import_module'"),
        "nested in containers": (
            b"(dp0\nVstate\n" + b"(lp1\n" + b"(dp2\nVx\n" + b"(" + call(g("os", "system"), s(cmd)) + b"tp3\ns" + b"a" + b"s",
            "'os.system'"),
        "malicious persistent id": (
            b"(" + s("storage") + call(g("os", "system"), s(cmd)) + s("0") + s("cpu") + b"I4\ntQ", "'os.system'"),
        "persistent id of an unknown kind": (b"(" + s("exec") + s(py) + b"tQ", "unexpected persistent id"),
        "pickle.loads of a second pickle": (
            call(g("pickle", "loads"), call(g("_codecs", "encode"), s("cos\nsystem\n(Vx\ntR."), s("latin1"))),
            "'pickle.loads'"),
        "torch function outside the allow-list": (
            call(g("torch.serialization", "load"), s(str(sentinel))), "'torch.serialization.load'"),
        "os reached through a stand-in module": (call(g("model.os", "system"), s(cmd)), "'model.os.system'"),
        "calling an inert stand-in": (call(call(g("model", "RNNModel")), s(cmd)), "call an object of class 'model.RNNModel'"),
        "getattr on a stand-in, then a call": (
            call(call(g("builtins", "getattr"), call(g("weight_drop", "WeightDrop")), s("system")), s(cmd)),
            "weight_drop.WeightDrop.system"),
        "BUILD on an allowed class": (
            g("collections", "OrderedDict") + b"(dV__init__\nVx\nsb", "set the state of <class 'collections.OrderedDict'>"),
        "operator.attrgetter": (call(call(g("operator", "attrgetter"), s("system")), s("os")), "'operator.attrgetter'"),
    }


PAYLOAD_NAMES = list(payloads(Path("/x")))


def torchscript_file(path: Path, data_pkl: bytes) -> Path:
    """A TorchScript archive's layout (code/, constants.pkl) around a hostile data.pkl."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("m/data.pkl", data_pkl)
        zf.writestr("m/code/__torch__.py", "import os\nos.system('touch never')\n")
        zf.writestr("m/constants.pkl", pickle.dumps((), protocol=2))
        zf.writestr("m/byteorder", "little")
        zf.writestr("m/version", "8\n")
    return path


def _write(kind: str, path: Path, body: bytes) -> Path:
    write = {"zip": zip_torch_file, "legacy": legacy_torch_file, "torchscript": torchscript_file}[kind]
    return write(path, body + b".")


@pytest.mark.parametrize("kind", ["zip", "legacy", "torchscript"])
@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, name, kind):
    sentinel = tmp_path / "PWNED"
    body, must_say = payloads(sentinel)[name]
    path = _write(kind, tmp_path / f"evil_{kind}.pt", body)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert must_say in msg and "malicious" in msg and "\n" not in msg
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(path, format="pickle")
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(path, format="state-dict")     # refused as unsafe, not just as "not a state dict"
    assert read_card(path) == {}
    assert not sentinel.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_the_payload_is_live(tmp_path):
    """Control: the os.system payload really runs under an unrestricted unpickler (our own, harmless
    ``touch``), so the tests above prove something."""
    sentinel = tmp_path / "PWNED"
    body, _ = payloads(sentinel)["os.system"]
    pickle.loads(body + b".")  # deliberately unsafe, on a payload this test wrote itself
    assert sentinel.exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_reduce_payloads_inside_state_dicts_and_modules(tmp_path, legacy):
    sentinel = tmp_path / "PWNED"
    kwargs = {"_use_new_zipfile_serialization": False} if legacy else {}
    evil = Reduce(os.system, (f"touch {sentinel}",))
    torch.save({"weight_ih_l0": torch.ones(8, 2), "meta": {"history": [1, (evil,)]}}, tmp_path / "sd.pt", **kwargs)
    lstm = torch.nn.LSTM(2, 2)
    lstm.note = Reduce(subprocess.check_output, (["touch", str(sentinel)],))
    torch.save(lstm, tmp_path / "module.pt", **kwargs)
    for name, global_name in (("sd.pt", "posix.system"), ("module.pt", "subprocess.check_output")):
        with pytest.raises(UnsafeCheckpointError, match=f"forbidden global '{global_name}'"):
            load_checkpoint(tmp_path / name)
    assert not sentinel.exists()


def test_npz_with_a_pickled_array_under_state_dict_names_never_unpickles(tmp_path):
    """An .npz whose 'weight' is an object array (a pickle inside the archive) is refused with one
    line; its payload never runs (arrays are read with allow_pickle=False)."""
    import numpy as np

    sentinel = tmp_path / "PWNED"
    evil = np.empty(1, dtype=object)
    evil[0] = Reduce(os.system, (f"touch {sentinel}",))
    np.savez(tmp_path / "evil.npz", **{"rnn.weight_ih_l0": evil, "rnn.bias_hh_l0": np.zeros(8, np.float32)})
    for fmt in ("auto", "state-dict"):
        with pytest.raises(CheckpointError, match="Object arrays cannot be loaded"):
            load_checkpoint(tmp_path / "evil.npz", format=fmt)
    assert not sentinel.exists()


def test_malicious_persistent_id_from_a_pickler(tmp_path):
    """A torch-like file whose persistent id (the storage record) carries a __reduce__ payload."""
    sentinel = tmp_path / "PWNED"

    class EvilPickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, torch.Tensor):
                return ("storage", Reduce(os.system, (f"touch {sentinel}",)), "0", "cpu", obj.numel())
            return None

    import io
    buf = io.BytesIO()
    EvilPickler(buf, protocol=2).dump({"w": torch.ones(3)})
    path = zip_torch_file(tmp_path / "pid.pt", buf.getvalue())
    with pytest.raises(UnsafeCheckpointError, match="posix.system"):
        load_checkpoint(path)
    assert not sentinel.exists()


def test_legacy_module_persistent_id_with_payload(tmp_path):
    sentinel = tmp_path / "PWNED"
    body = b"(" + s("module") + call(g("os", "system"), s(f"touch {sentinel}")) + b"NNtQ"
    with pytest.raises(UnsafeCheckpointError, match="'os.system'"):
        load_checkpoint(legacy_torch_file(tmp_path / "mod.pt", body + b"."))
    assert not sentinel.exists()


def test_restricted_reader_alone_refuses(tmp_path):
    body, _ = payloads(tmp_path / "PWNED")["builtins.eval"]
    with pytest.raises(UnsafeCheckpointError, match="builtins.eval"):
        load_torch_file_restricted(_write("zip", tmp_path / "e.pt", body))


# ----------------------------------------------------------------------------- broken and foreign files


def _broken_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    torch.save({"w": torch.ones(100)}, tmp_path / "good_zip.pt")
    torch.save({"w": torch.ones(100)}, tmp_path / "good_legacy.pt", _use_new_zipfile_serialization=False)
    files = {}

    def add(name, data, expect):
        p = tmp_path / name
        p.write_bytes(data)
        files[name] = (p, expect)

    z = (tmp_path / "good_zip.pt").read_bytes()
    lg = (tmp_path / "good_legacy.pt").read_bytes()
    add("empty.pt", b"", "is empty")
    add("truncated_zip.pt", z[: len(z) // 2], "truncated")
    add("truncated_legacy.pt", lg[: len(lg) - 50], "truncated")
    add("truncated_legacy_header.pt", lg[:20], "truncated")
    add("notes.txt", b"this is not a model\n", "a text file, not a checkpoint")
    add("image.png", b"\x89PNG\r\n\x1a\n" + os.urandom(64), "a PNG image")
    add("random.bin", bytes(range(256)) * 8, "not a recognised checkpoint")
    add("plain.pkl", pickle.dumps({"a": 1}, protocol=2), "not a PyTorch checkpoint")
    add("other.zip", _zip_bytes(tmp_path), "zip archive without data.pkl")
    return files


def _zip_bytes(tmp_path: Path) -> bytes:
    p = tmp_path / "_tmp.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("readme.txt", "hello")
    data = p.read_bytes()
    p.unlink()
    return data


def test_broken_files_give_one_clear_line(tmp_path):
    for name, (path, expect) in _broken_files(tmp_path).items():
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        msg = str(info.value)
        assert expect in msg, (name, msg)
        assert "\n" not in msg and str(path) in msg, (name, msg)
        assert not isinstance(info.value, UnsafeCheckpointError), name


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(InputError, match="is a directory"):
        load_checkpoint(tmp_path)


# ----------------------------------------------------------------------------- through the CLI


def _one_line(res) -> str:
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


@pytest.mark.parametrize("name,kind,cmd", [
    ("os.system", "zip", "inspect"),
    ("getattr(__import__('os'), 'system')", "legacy", "timescales"),
    ("malicious persistent id", "zip", "inspect"),
])
def test_cli_refuses_malicious_files(tmp_path, cli, name, kind, cmd):
    sentinel = tmp_path / "PWNED"
    body, must_say = payloads(sentinel)[name]
    path = _write(kind, tmp_path / "evil.pt", body)
    extra = ["--out", str(tmp_path / "out")] if cmd == "timescales" else []
    line = _one_line(cli(cmd, path, *extra))
    assert line.startswith("tsprobe: error: ") and must_say in line and "may be malicious" in line
    assert not sentinel.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["empty.pt", "truncated_zip.pt", "random.bin"])
def test_cli_broken_files(tmp_path, cli, name):
    path, expect = _broken_files(tmp_path)[name]
    line = _one_line(cli("inspect", path))
    assert line.startswith("tsprobe: error: ") and expect in line
