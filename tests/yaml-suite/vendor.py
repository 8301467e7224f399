#!/usr/bin/env python3
"""Turn yaml/yaml-test-suite's src/*.yaml into per-case files for
tests/it/yaml_suite.rs.

    python3 tests/yaml-suite/vendor.py SUITE_GIT_DIR [--ref main] [--out DIR]
        [--check REF]

SUITE_GIT_DIR is a clone (or bare git directory) of yaml/yaml-test-suite.
Each case becomes DIR/<ID>/ (ID as the suite's data releases name it, with
"-NN" for the cases of a multi-case file) holding what the harness uses:

    ===       the case's name
    in.yaml   the YAML input
    in.json   the JSON it loads as (when the case has one)
    error     present (empty) when the YAML must be refused

plus DIR/SOURCE naming the repository and commit, and DIR/LICENSE (the
suite's, MIT). Only the standard library and PyYAML are needed.

This follows the suite's own bin/suite-to-data.pl and bin/YAMLTestSuite.pm:
files whose first case says `skip: true` are left out; a case inherits
name, tags, yaml, tree, json, dump, emit and toke from the case before it;
`fail` is true when present; and the visible-whitespace markers are
replaced: ␣ space, —…» tab, ← CR, ⇔ BOM, ↵ removed, a final ∎ with its
newline removed (no final newline). --check REF compares the result, file
by file, with a data release of the suite (e.g. the tag data-2022-01-17).
"""

import argparse
import math
import os
import re
import shutil
import subprocess
import sys

import yaml

MARKERS = [
    ("␣", " "),
    (re.compile("—*»"), "\t"),
    ("←", "\r"),
    ("⇔", "\ufeff"),
    ("↵", ""),
]

WRITTEN = {"name": "===", "fail": "error", "yaml": "in.yaml", "json": "in.json"}
INHERITED = ["tree", "json", "dump", "emit", "toke"]


def unescape(text):
    for marker, replacement in MARKERS:
        if isinstance(marker, str):
            text = text.replace(marker, replacement)
        else:
            text = marker.sub(replacement, text)
    if text.endswith("∎\n"):
        text = text[: -len("∎\n")]
    return text


def git(git_dir, *args):
    return subprocess.run(
        ["git", "--git-dir", git_dir, *args], check=True, capture_output=True
    ).stdout


def cases(git_dir, ref):
    """(ID, {file name: text}) for every case of the suite at `ref`."""
    names = git(git_dir, "ls-tree", "--name-only", f"{ref}:src").decode().split()
    for file in sorted(names):
        if not file.endswith(".yaml"):
            continue
        base = file[: -len(".yaml")]
        tests = yaml.safe_load(git(git_dir, "show", f"{ref}:src/{file}").decode("utf-8"))
        if tests[0].get("skip"):
            continue
        multi = len(tests) > 1
        width = int(math.log(len(tests) - 1) / math.log(10)) + 2 if multi else 2
        cache = {}
        for i, test in enumerate(tests):
            test = dict(test)
            if test.get("name") and cache.get("name"):
                sys.exit(f"{base}: a case may not rename the file's test")
            test["name"] = test.get("name") or cache.get("name")
            test["tags"] = test.get("tags") or cache.get("tags") or ""
            test["yaml"] = test.get("yaml") or cache.get("yaml")
            test["fail"] = "fail" in test
            for key in INHERITED:
                if key not in test and cache.get(key) is not None:
                    test[key] = cache[key]
            cache = dict(test)
            files = {}
            for key, out in WRITTEN.items():
                value = test.get(key)
                if value is None:
                    continue
                if key == "name":
                    value += "\n"
                elif key == "fail":
                    if not value:
                        continue
                    value = ""
                files[out] = unescape(value)
            yield (f"{base}-{i:0{width}d}" if multi else base), files


def check(git_dir, ref, generated):
    """Differences between `generated` and the data release at `ref`."""
    listing = git(git_dir, "ls-tree", "-r", "--name-only", ref).decode().split("\n")
    release = {}
    for path in listing:
        parts = path.split("/")
        if len(parts) in (2, 3) and parts[-1] in WRITTEN.values():
            if parts[0] in ("name", "tags"):
                continue
            release.setdefault("-".join(parts[:-1]), {})[parts[-1]] = path
    problems = []
    for case in sorted(set(release) | set(generated)):
        want = release.get(case, {})
        got = generated.get(case, {})
        for name in sorted(set(want) | set(got)):
            if name not in got or name not in want:
                problems.append(f"{case}/{name}: only in {'release' if name in want else 'ours'}")
                continue
            if git(git_dir, "show", f"{ref}:{want[name]}") != got[name].encode("utf-8"):
                problems.append(f"{case}/{name}: differs")
    return problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("git_dir")
    parser.add_argument("--ref", default="main")
    parser.add_argument("--out", default=os.path.join(here, "cases"))
    parser.add_argument("--check", metavar="REF")
    args = parser.parse_args()

    commit = git(args.git_dir, "rev-parse", f"{args.ref}^{{commit}}").decode().strip()
    generated = dict(cases(args.git_dir, commit))
    if args.check:
        problems = check(args.git_dir, args.check, generated)
        for p in problems:
            print(p)
        print(f"{len(generated)} cases; {len(problems)} differences from {args.check}")
        sys.exit(1 if problems else 0)

    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    for case, files in generated.items():
        os.mkdir(os.path.join(args.out, case))
        for name, text in files.items():
            with open(os.path.join(args.out, case, name), "wb") as f:
                f.write(text.encode("utf-8"))
    with open(os.path.join(args.out, "LICENSE"), "wb") as f:
        f.write(git(args.git_dir, "show", f"{commit}:License"))
    with open(os.path.join(args.out, "SOURCE"), "w") as f:
        f.write(f"yaml/yaml-test-suite {commit} (src/*.yaml, by tests/yaml-suite/vendor.py)\n")
    print(f"wrote {len(generated)} cases to {args.out}")


if __name__ == "__main__":
    main()
