"""What a device call sends, and how to send less (the device tool copies the working tree: tracked
files plus untracked files git does not ignore, at most 64 MiB).

The tracked tree outgrew that limit (the three shipped 15 MB checkpoints, the example GRU/RNN
checkpoints, the figures and per-seed folders), and a device call refuses such a tree before it
starts. What a GPU check needs is the package, the tests, the benchmarks and the shipped PTB
checkpoints, not the figures, the docs or the example checkpoints. So, in the repository root::

    python scripts/device_tree.py size              # bytes that would travel, largest folders; exit 1 if over
    python scripts/device_tree.py slim              # leave figures/, docs/, checkpoints/examples/ behind
    ... one device call (benchmarks/gpu_check.py) ...
    python scripts/device_tree.py restore           # everything tracked again, exactly as before

``slim`` untracks those folders in the index only (``git rm --cached``; every file stays on disk)
and ignores them in ``.git/info/exclude``, inside a marked block; ``restore`` removes the block and
resets those paths of the index to ``HEAD``. While slim, a pre-commit hook refuses every commit (a
commit then would record the folders as deleted); ``restore`` removes the hook. ``status`` says
whether the tree is slim.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

LIMIT = 64 * 2**20
DEFAULT_PATHS = ("figures", "docs", "checkpoints/examples")
BEGIN, END = "# >>> tsprobe device_tree slim", "# <<< tsprobe device_tree slim"
HOOK = """#!/bin/sh
# written by scripts/device_tree.py slim: the index has folders untracked for a device call
echo "refused: the tree is slimmed for a device call; run python scripts/device_tree.py restore first" >&2
exit 1
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def git_dir(root: Path) -> Path:
    return (root / git(root, "rev-parse", "--git-dir").strip()).resolve()


def travelling(root: Path) -> list[tuple[str, int]]:
    """(path, bytes) of every file the device tool copies: tracked, and untracked but not ignored."""
    names = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    out = []
    for name in sorted(set(n for n in names if n)):
        p = root / name
        if p.is_file() and not p.is_symlink():
            out.append((name, p.stat().st_size))
    return out


def state_file(root: Path) -> Path:
    return git_dir(root) / "tsprobe-device-slim.json"


def size(root: Path, top: int = 8) -> int:
    files = travelling(root)
    total = sum(b for _, b in files)
    by_dir = Counter()
    for name, b in files:
        by_dir[name.split("/")[0] if "/" in name else "."] += b
    print(f"{total / 2**20:.1f} MiB in {len(files)} files would travel (limit {LIMIT / 2**20:.0f} MiB)"
          f"{'' if total <= LIMIT else ': OVER the limit'}{'; slim' if state_file(root).is_file() else ''}")
    for d, b in by_dir.most_common(top):
        print(f"  {b / 2**20:7.1f} MiB  {d}/")
    return total


def slim(root: Path, paths: list[str]) -> None:
    if state_file(root).is_file():
        raise SystemExit("already slim: run `restore` first")
    paths = [p.strip("/") for p in paths if (root / p).exists()]
    tracked = [p for p in paths if git(root, "ls-files", "--", p).strip()]
    if not tracked:
        raise SystemExit("nothing to leave behind")
    if subprocess.run(["git", "diff", "--cached", "--quiet", "--", *tracked], cwd=root).returncode:
        raise SystemExit(f"staged changes under {', '.join(tracked)}: commit or unstage them first "
                         "(restore resets these paths of the index to HEAD)")
    info = git_dir(root) / "info"
    info.mkdir(exist_ok=True)
    exclude = info / "exclude"
    text = exclude.read_text() if exclude.is_file() else ""
    block = "\n".join([BEGIN, *(f"/{p}/" if (root / p).is_dir() else f"/{p}" for p in tracked), END])
    exclude.write_text(text + ("" if not text or text.endswith("\n") else "\n") + block + "\n")
    hooks = git_dir(root) / "hooks"
    hooks.mkdir(exist_ok=True)
    hook = hooks / "pre-commit"
    if hook.exists():
        raise SystemExit(f"{hook} exists: not replacing it (restore leaves the index as it was)")
    state_file(root).write_text(json.dumps({"paths": tracked}) + "\n")
    hook.write_text(HOOK)
    hook.chmod(0o755)
    git(root, "rm", "-r", "-q", "--cached", "--", *tracked)
    print(f"left behind (still on disk, untracked and ignored until restore): {', '.join(tracked)}")


def restore(root: Path) -> None:
    st = state_file(root)
    if not st.is_file():
        print("not slim: nothing to restore")
        return
    paths = json.loads(st.read_text())["paths"]
    exclude = git_dir(root) / "info" / "exclude"
    if exclude.is_file():
        lines, keep, inside = exclude.read_text().splitlines(), [], False
        for line in lines:
            if line == BEGIN:
                inside = True
            elif line == END:
                inside = False
            elif not inside:
                keep.append(line)
        exclude.write_text("\n".join(keep) + ("\n" if keep else ""))
    git(root, "reset", "-q", "HEAD", "--", *paths)
    hook = git_dir(root) / "hooks" / "pre-commit"
    if hook.is_file() and hook.read_text() == HOOK:
        hook.unlink()
    st.unlink()
    print(f"restored: {', '.join(paths)} tracked again")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("size", "slim", "restore", "status"))
    ap.add_argument("paths", nargs="*", help=f"what slim leaves behind (default: {' '.join(DEFAULT_PATHS)})")
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    a = ap.parse_args(argv)
    root = a.root.resolve()
    if a.command == "slim":
        slim(root, list(a.paths or DEFAULT_PATHS))
    elif a.command == "restore":
        restore(root)
    elif a.command == "status":
        print("slim" if state_file(root).is_file() else "not slim")
        return 0
    return 0 if size(root) <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
