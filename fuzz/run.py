"""``make fuzz``: the native page reader against the fallback, under sanitizers, for N seconds.

    python -m fuzz.run --seconds 1800     # make fuzz FUZZ_SECONDS=1800
    python -m fuzz.run --seconds 60       # the smoke run make test does (tests/)

1. Builds the reader with AddressSanitizer and UndefinedBehaviorSanitizer (every report
   fatal) into ``.local/fuzz/``: with clang and libFuzzer's coverage instrumentation when
   clang is there (``make fuzz-tools`` installs it), else with the system cc (then only the
   Python side guides the mutations).
2. Writes the seeds (``fuzz.seeds``: simulator pages of every level, the issue's bodies,
   one page cut at every position) and starts ``fuzz.target`` under atheris with the
   sanitizer runtime preloaded, the JSON dictionary ``fuzz/json.dict``, and the fixed corpus
   ``fuzz/corpus/`` as seeds too. Inputs it finds accumulate in ``.local/fuzz/corpus/``.
3. Exits non-zero on a sanitizer report or a mismatch, printing the input made minimal (a
   crash is minimised in forked children). Copy it into ``fuzz/corpus/``: the regression
   tests replay every file there. ``--keep`` merges what a clean run found that reaches new
   code into ``fuzz/corpus/`` (libFuzzer's -merge), so the tests replay it from then on.

Prints the inputs executed, from libFuzzer's final stats.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from controller.tiktok.native.build import build

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".local" / "fuzz"  # corpus/: what runs found; run-PID/: one run's files
SANITIZERS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
COMMON = ["-g", "-O1", "-fno-omit-frame-pointer", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror"]


def _clang_with_libfuzzer() -> str | None:
    """clang, if it can build a shared library with libFuzzer's coverage instrumentation."""
    clang = shutil.which("clang")
    if not clang:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "probe.c"
        source.write_text("int probe(int x) { return x ? 1 : 2; }\n")
        flags = [*COMMON, *SANITIZERS, "-fsanitize=fuzzer-no-link"]
        probe = subprocess.run(
            [clang, *flags, "-o", str(Path(tmp) / "probe.so"), str(source)], capture_output=True
        )
    return clang if probe.returncode == 0 else None


def build_sanitized(run: Path, use_clang: bool = True) -> tuple[Path, dict[str, str], str]:
    """(the library, the environment to load it in Python, a description)."""
    import atheris

    library = run / "libtiktok_rows_sanitized.so"
    clang = _clang_with_libfuzzer() if use_clang else None
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:halt_on_error=1:handle_abort=1"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    if clang:
        build(clang, [*COMMON, *SANITIZERS, "-fsanitize=fuzzer-no-link"], library)
        env["LD_PRELOAD"] = str(Path(atheris.path()) / "asan_with_fuzzer.so")
        return library, env, "clang, ASan + UBSan, libFuzzer coverage of the C reader"
    cc = os.environ.get("CC") or "cc"
    build(cc, [*COMMON, *SANITIZERS], library)
    runtime = subprocess.run(
        [cc, "-print-file-name=libasan.so"], capture_output=True, text=True, check=True
    ).stdout.strip()
    env["LD_PRELOAD"] = runtime
    return library, env, f"{cc}, ASan + UBSan, no C coverage (no clang with libFuzzer)"


def write_seeds(directory: Path) -> int:
    from fuzz import seeds

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    bodies = dict(seeds.simulator_pages())
    bodies.update(seeds.ISSUE_CASES)
    one_row = dict(seeds.simulator_pages(page_size=1))["simulator-advertiser-page1"]
    for cut, body in enumerate(seeds.truncations(one_row)):
        bodies[f"cut-{cut}"] = body
    for name, body in bodies.items():
        (directory / name).write_bytes(body)
    return len(bodies)


def keep(wrapper: Path, env: dict[str, str], max_len: int, found: Path) -> None:
    """Merge the inputs of ``found`` that reach new code into the fixed corpus."""
    fixed = ROOT / "fuzz" / "corpus"
    before = len(list(fixed.iterdir()))
    subprocess.run(
        [str(wrapper), "-merge=1", f"-max_len={max_len}", str(fixed), str(found)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    print(f"fuzz: fuzz/corpus/ {before} → {len(list(fixed.iterdir()))} inputs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=1800, help="how long to fuzz (1800)")
    parser.add_argument("--max-len", type=int, default=16384, help="largest input (16384)")
    parser.add_argument(
        "--no-clang", action="store_true", help="build with cc even where clang is (no C coverage)"
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=WORK / "corpus",
        help="where found inputs accumulate (.local/fuzz/corpus)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="merge new coverage into fuzz/corpus/ after a clean run"
    )
    args = parser.parse_args(argv)

    run = WORK / f"run-{os.getpid()}"  # runs side by side (make fuzz, make test) keep apart
    seeds_dir, corpus_dir, artifacts = run / "seeds", args.corpus, run / "artifacts"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True)
    library, env, how = build_sanitized(run, not args.no_clang)
    count = write_seeds(seeds_dir)
    print(f"fuzz: {how}; {count} seeds + fuzz/corpus/; {args.seconds} s", flush=True)
    wrapper = run / "target.sh"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m fuzz.target "{library}" "$@"\n')
    wrapper.chmod(0o755)
    env["FUZZ_TARGET_COMMAND"] = str(wrapper)
    command = [
        str(wrapper),
        f"-max_total_time={args.seconds}",
        f"-max_len={args.max_len}",
        f"-dict={ROOT / 'fuzz' / 'json.dict'}",
        "-timeout=120",
        "-rss_limit_mb=6144",
        "-use_value_profile=1",
        # Without C coverage nothing counts as new: mutate at full length from the start.
        *([] if "libFuzzer coverage" in how else ["-len_control=0"]),
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
        str(corpus_dir),
        str(seeds_dir),
        str(ROOT / "fuzz" / "corpus"),
    ]
    output: list[str] = []
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if not re.match(r"#\d+\s+(NEW|REDUCE)", line):
                sys.stdout.write(line)  # libFuzzer's per-input lines: too many to show
        status = process.wait()
    text = "".join(output)
    executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    runs = executed.group(1) if executed else "?"
    if status == 0:
        print(f"fuzz: {runs} inputs executed in {args.seconds} s: no mismatch, no sanitizer report")
        if args.keep:
            keep(wrapper, env, args.max_len, corpus_dir)
        shutil.rmtree(run)
        return 0
    crashes = sorted(artifacts.glob("*"))
    if "=== MISMATCH" not in text and crashes:
        print(f"fuzz: sanitizer report or crash; minimising {crashes[0]}…", flush=True)
        subprocess.run([str(wrapper), "--minimize-crash", str(crashes[0])], cwd=ROOT, env=env)
    print(f"fuzz: FAILED after {runs} inputs (exit {status}); artifacts: {artifacts}")
    return status or 1


if __name__ == "__main__":
    sys.exit(main())
