"""Where our passes spend their time: py-spy profiles of a cold pass and an all-304 pass.

``python -m bench.profiling [--feeds 2000] [--items 20] [--rate 100] [--out DIR]``

Starts the farm, then runs ``bench.runner ours`` twice on a fresh store under
``py-spy record --subprocesses --threads --format speedscope`` (a cold pass, then an all-304
pass), keeps both profiles (open them at https://www.speedscope.app) and prints, per pass:

- the CPU seconds of the main process's event-loop thread, of its other threads and of the
  parsing worker processes, measured by the runner itself (``getrusage``, ``thread_time``);
- per role (event loop, store writer, the default executor's resolver threads, other threads,
  worker processes): the sampled seconds, the packages the time is spent in, the top
  functions by self time (in the function itself) with their total (including callees), and
  our own functions by total time.

py-spy samples every thread that is not idle, including threads that are runnable but waiting
for a core or for the GIL, so on a busy two-core machine a role's sampled seconds exceed its
CPU seconds; read the shares within a role, and the CPU seconds for the split between roles.
Samples taken while a module is being imported are counted apart. With ``--gil`` only samples of
the thread holding the GIL are kept: each role's seconds are then its Python CPU time, and the
main process's threads compete for that one lock.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.corpus import SEED
from bench.farm import HOSTS, Farm
from bench.measure import clean_env, run_checked
from bench.runner import command as runner_command
from bench.runner import count_ours

CACHE = Path(__file__).resolve().parent / ".cache"
TOP = 12
OUR_PACKAGES = ("ingest", "storage", "scheduler")
ROLES = (
    "main: event loop",
    "main: store writer",
    "main: default executor (getaddrinfo)",
    "main: other threads",
    "workers",
)
_STDLIB = f"python{sys.version_info.major}.{sys.version_info.minor}/"
_NATIVE = "(no Python frame: native code)"


@dataclass(slots=True)
class Role:
    """Sampled seconds of one role, per function and per package."""

    name: str
    seconds: float = 0.0
    import_s: float = 0.0
    self_s: Counter[str] = field(default_factory=Counter)
    total_s: Counter[str] = field(default_factory=Counter)
    package_s: Counter[str] = field(default_factory=Counter)

    @property
    def work_s(self) -> float:
        return self.seconds - self.import_s


def package_of(path: str) -> str:
    """A frame's file as a package name: ``sqlalchemy``, ``ingest``, ``stdlib:asyncio``..."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if _STDLIB in path:
        return "stdlib:" + path.split(_STDLIB, 1)[1].split("/", 1)[0].removesuffix(".py")
    for ours in (*OUR_PACKAGES, "bench"):
        if f"/{ours}/" in path:
            return ours
    return path.rsplit("/", 1)[-1] or "?"


def _label(frame: dict[str, Any]) -> str:
    path = str(frame.get("file", ""))
    short = path.split("site-packages/", 1)[-1].split(_STDLIB, 1)[-1]
    if short.startswith("/"):  # our own code: keep package/module.py
        short = "/".join(short.rsplit("/", 2)[-2:])
    return f"{frame.get('name', '?')} ({short})"


def role_of(profile_name: str, main_pid: int) -> str:
    """The role of one of py-spy's profiles, named ``Process P Thread T "name"``."""
    words = profile_name.split(maxsplit=4)
    pid, tid = int(words[1]), int(words[3])
    thread = words[4].strip('"') if len(words) > 4 else ""
    if pid != main_pid:
        return "workers"
    if tid == pid:  # Linux: the main thread's id is the process id
        return "main: event loop"
    if thread.startswith("store-writer"):
        return "main: store writer"
    if thread.startswith("asyncio_"):
        return "main: default executor (getaddrinfo)"
    return "main: other threads"


def summarize(speedscope: dict[str, Any], main_pid: int) -> dict[str, Role]:
    """py-spy's speedscope document (weights in seconds) folded into roles."""
    frames: list[dict[str, Any]] = speedscope["shared"]["frames"]
    labels = [_label(frame) for frame in frames]
    packages = [package_of(str(frame.get("file", ""))) for frame in frames]
    names = [str(frame.get("name", "")) for frame in frames]
    # py-spy puts "process P:..." and "thread (T): name" pseudo-frames at the stacks' roots.
    pseudo = {i for i, name in enumerate(names) if name.startswith(("thread (", "process "))}
    importing = {i for i, frame in enumerate(frames) if "importlib._bootstrap" in frame["file"]}
    roles: dict[str, Role] = {}
    for profile in speedscope["profiles"]:
        name = role_of(profile["name"], main_pid)
        role = roles.setdefault(name, Role(name))
        for full_stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            stack = [index for index in full_stack if index not in pseudo]
            role.seconds += weight
            if importing.intersection(stack):
                role.import_s += weight
                continue
            leaf = stack[-1] if stack else None  # stacks run from the root to the leaf
            role.self_s[labels[leaf] if leaf is not None else _NATIVE] += weight
            role.package_s[packages[leaf] if leaf is not None else "(native)"] += weight
            for label in {labels[index] for index in stack}:
                role.total_s[label] += weight
    return roles


def _is_ours(label: str) -> bool:
    return label.rsplit(" (", 1)[-1].startswith(tuple(f"{p}/" for p in OUR_PACKAGES))


def report(roles: dict[str, Role], cpu: dict[str, float], top: int = TOP) -> list[str]:
    lines = [
        "CPU seconds: "
        + ", ".join(
            f"{key.removeprefix('cpu_').removesuffix('_s')} {value:.1f}"
            for key, value in cpu.items()
        )
    ]
    for name in ROLES:
        role = roles.get(name)
        if role is None or role.work_s <= 0:
            continue
        work = role.work_s
        lines.append(
            f"{name}: {role.seconds:.1f} s sampled, {role.import_s:.1f} s of it importing modules"
        )
        lines.append(
            "  by package (self): "
            + ", ".join(f"{pkg} {sec / work:.0%}" for pkg, sec in role.package_s.most_common(8))
        )
        lines.append(f"  {'self':>6} {'total':>6}  function")
        for label, seconds in role.self_s.most_common(top):
            lines.append(f"  {seconds / work:6.1%} {role.total_s[label] / work:6.1%}  {label}")
        ours = [(label, sec) for label, sec in role.total_s.most_common() if _is_ours(label)]
        if ours:
            lines.append(
                "  our code by total: "
                + "; ".join(f"{label} {sec / work:.0%}" for label, sec in ours[:top])
            )
    return lines


def as_json(roles: dict[str, Role], top: int = TOP) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, role in roles.items():
        work = role.work_s
        if work <= 0:
            continue
        result[name] = {
            "sampled_s": round(role.seconds, 2),
            "import_s": round(role.import_s, 2),
            "packages": {p: round(s / work, 4) for p, s in role.package_s.most_common(10)},
            "self": {
                f: {"self": round(s / work, 4), "total": round(role.total_s[f] / work, 4)}
                for f, s in role.self_s.most_common(top)
            },
            "ours_total": {
                f: round(s / work, 4) for f, s in role.total_s.most_common() if _is_ours(f)
            },
        }
    return result


def profile_pass(
    py_spy: str,
    label: str,
    *,
    folder: Path,
    urls_file: Path,
    rate: int,
    workers: int,
    gil: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One runner pass under py-spy: (speedscope document, the runner's report)."""
    out = folder / f"{label}.json"
    profile = folder / f"{label}.speedscope.json"
    run_checked(
        [
            py_spy,
            "record",
            "--subprocesses",
            "--threads",
            f"--rate={rate}",
            "--format=speedscope",
            f"--output={profile}",
            *(["--gil"] if gil else []),
            "--",
            *runner_command("ours", workdir=folder, urls=urls_file, workers=workers, out=out),
        ],
        env=clean_env(),
    )
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8")) | count_ours(folder)
    print(f"{label}: {result['seconds']:.2f} s under py-spy, {result['entries']:,} entries stored")
    return json.loads(profile.read_text(encoding="utf-8")), result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Profile our cold and all-304 passes.")
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--workers", type=int, default=32, help="our [fetch] concurrency")
    parser.add_argument("--hosts", type=int, default=HOSTS, help="loopback hosts of the farm")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=TOP)
    parser.add_argument(
        "--gil", action="store_true", help="only samples holding the GIL (Python CPU, no waits)"
    )
    parser.add_argument("--out", type=Path, help="profiles and summary [bench/.cache/profile-NxM]")
    args = parser.parse_args(argv)
    here = str(Path(sys.executable).parent)
    py_spy = shutil.which("py-spy", path=here) or shutil.which("py-spy")
    if py_spy is None:
        sys.exit("py-spy is not installed: pip install -e '.[bench]'")
    folder: Path = args.out or CACHE / f"profile-{args.feeds}x{args.items}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    summary: dict[str, Any] = {"feeds": args.feeds, "items": args.items, "rate": args.rate}
    lines: list[str] = []
    with Farm(args.feeds, args.items, seed=args.seed, hosts=args.hosts) as farm:
        urls_file = folder / "urls.txt"
        urls_file.write_text("\n".join(farm.urls()) + "\n", encoding="utf-8")
        for label in ("cold", "all-304"):
            speedscope, result = profile_pass(
                py_spy,
                label,
                folder=folder,
                urls_file=urls_file,
                rate=args.rate,
                workers=args.workers,
                gil=args.gil,
            )
            roles = summarize(speedscope, int(result["pid"]))
            cpu = {key: value for key, value in result.items() if key.startswith("cpu_")}
            summary[label] = {
                "seconds": result["seconds"],
                **cpu,
                "roles": as_json(roles, args.top),
            }
            lines += [
                "",
                f"== {label} pass ({args.feeds:,} feeds x {args.items} items, "
                f"{result['seconds']:.1f} s under py-spy) ==",
            ]
            lines += report(roles, cpu, args.top)
    text = "\n".join(lines)
    print(text)
    (folder / "summary.txt").write_text(text + "\n", encoding="utf-8")
    (folder / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    print(f"\nprofiles (speedscope): {folder}/*.speedscope.json")


if __name__ == "__main__":
    main()
