"""Times Aider's repository map on a tree, for tests/bench/context.rs.

Usage: python aider_repomap.py ROOT FILE_LIST CHANGED_FILE
FILE_LIST holds one path per line (relative to ROOT): the files tack indexed. Prints one JSON
object: cold (no tags cache), warm (a new RepoMap over the cache Aider wrote), changed (the
same RepoMap after CHANGED_FILE was edited), in seconds, and the map's size.
"""

import json
import os
import shutil
import sys
import time

# No network: litellm's bundled model list, and Aider's copy of it taken from there (Aider
# fetches it when its cache file is missing or old; run with a HOME of the bench's own).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def seed_model_list():
    import importlib.util

    spec = importlib.util.find_spec("litellm")
    bundled = os.path.join(spec.submodule_search_locations[0],
                           "model_prices_and_context_window_backup.json")
    cache = os.path.join(os.path.expanduser("~"), ".aider", "caches")
    os.makedirs(cache, exist_ok=True)
    target = os.path.join(cache, "model_prices_and_context_window.json")
    shutil.copyfile(bundled, target)


seed_model_list()

from aider.io import InputOutput  # noqa: E402
from aider.models import Model  # noqa: E402
from aider.repomap import RepoMap  # noqa: E402


def main():
    root, listing, changed = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(listing) as f:
        files = [os.path.join(root, line.strip()) for line in f if line.strip()]
    shutil.rmtree(os.path.join(root, RepoMap.TAGS_CACHE_DIR), ignore_errors=True)
    io = InputOutput(pretty=False, yes=True)
    model = Model("gpt-4o")

    def build():
        repo_map = RepoMap(map_tokens=1024, root=root, main_model=model, io=io, refresh="always")
        started = time.perf_counter()
        text = repo_map.get_repo_map([], files)
        return repo_map, time.perf_counter() - started, text or ""

    _, cold, text = build()
    repo_map, warm, _ = build()
    path = os.path.join(root, changed)
    with open(path, "a") as f:
        f.write("\n")
    try:
        started = time.perf_counter()
        repo_map.get_repo_map([], files, force_refresh=True)
        after_change = time.perf_counter() - started
    finally:
        with open(path) as f:
            content = f.read()
        with open(path, "w") as f:
            f.write(content[:-1])
    print(json.dumps({"cold": cold, "warm": warm, "changed": after_change,
                      "files": len(files), "map_chars": len(text)}))


if __name__ == "__main__":
    main()
