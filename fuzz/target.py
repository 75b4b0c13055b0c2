"""The atheris target: ``fuzz/run.py`` starts it with the sanitizer runtime preloaded.

    python -m fuzz.target LIBRARY [libFuzzer flags and corpus directories]

It reads every input with the sanitizer build at LIBRARY and with the fallback
(``fuzz.differential.compare``). On a mismatch it prints the input made minimal and raises,
so libFuzzer saves it as a crash artifact and exits non-zero; a sanitizer report ends the
process the same way. The Python modules on both paths are instrumented too, so their
branches (which error, which cast) guide the mutations as the C coverage does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import atheris


class Mismatch(AssertionError):
    """The native reader and the fallback read one body differently."""


def crashes(body: bytes) -> bool:
    """Whether reading ``body`` natively ends the process (run in a forked child)."""
    from fuzz import differential

    child = os.fork()
    if child == 0:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # the child's reports: the first is shown
        for case in differential.CASES:
            case.read(body)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    return status != 0


def minimize_crash(path: Path) -> None:
    from fuzz import differential

    body = path.read_bytes()
    if not crashes(body):
        print(f"=== {path} does not crash when read alone", flush=True)
        return
    minimal = differential.minimize(body, crashes, budget_seconds=300)
    print(f"=== minimal crashing input ({len(minimal)} bytes): {minimal!r}", flush=True)


def main() -> None:
    # libFuzzer runs argv[0] again for -merge: fuzz/run.py's executable wrapper, if given.
    command = os.environ.get("FUZZ_TARGET_COMMAND", sys.argv[0])
    library, argv = Path(sys.argv[1]), [command, *sys.argv[2:]]
    with atheris.instrument_imports(include=["controller", "fuzz"]):
        from controller.tiktok import native
        from fuzz import differential
    native.use_library(library)
    if argv[1:2] == ["--minimize-crash"]:
        minimize_crash(Path(argv[2]))
        return

    def test_one_input(body: bytes) -> None:
        mismatch = differential.compare(body, every_layout=False)
        if mismatch is None:
            return
        minimal = differential.minimize(body)
        print(
            f"\n=== MISMATCH: {differential.compare(minimal)}\n"
            f"=== minimal input ({len(minimal)} bytes): {minimal!r}\n"
            f"=== original input ({len(body)} bytes): {body[:2000]!r}",
            flush=True,
        )
        raise Mismatch(mismatch)

    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
