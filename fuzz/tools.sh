#!/bin/sh
# clang with libFuzzer's runtime, for the coverage-guided sanitizer build of fuzz/run.py.
# Best effort, never fails: as root with apt-get (CI, this project's machines) it installs
# them; elsewhere fuzz/run.py builds with the system cc instead (ASan + UBSan still, no C
# coverage guiding the mutations).
probe() {
    echo 'int probe(int x) { return x ? 1 : 2; }' |
        clang -x c -shared -fPIC -fsanitize=address,undefined,fuzzer-no-link -o /dev/null - \
            >/dev/null 2>&1
}
probe && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1
    apt-get install -y -qq --no-install-recommends clang >/dev/null 2>&1
    version=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
    [ -n "$version" ] &&
        apt-get install -y -qq --no-install-recommends "libclang-rt-$version-dev" >/dev/null 2>&1
fi
if probe; then
    echo "fuzz: clang with libFuzzer installed"
else
    echo "fuzz: no clang with libFuzzer here: the fuzzer builds with cc (no C coverage)"
fi
exit 0
