"""How long a release environment takes to build, with pip and with uv, cold and warm.

A product of 17 pinned distributions (requests, Jinja2, rich, PyYAML… real wheels downloaded
once into ``~/.cache/onwatch-tests/wheels``) is served by a static simple index on 127.0.0.1.
Each round builds the environment of one urllib3 release through ``Environments.ensure``, as a
poll does: the baseline is pip, measured in the same script.

- cold: nothing cached (a fresh pip cache folder, a fresh uv cache);
- warm: the caches kept from earlier builds, as when a watch's next release comes out.

    python bench/env_build.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import html
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import parse_wheel_filename

from onwatch.upstream.venv import Environments, find_uv

WHEELS = Path(os.environ.get("ONWATCH_TEST_WHEELS", "~/.cache/onwatch-tests/wheels")).expanduser()
PRODUCT = [
    "requests==2.32.3",
    "urllib3==2.2.3",
    "idna==3.10",
    "certifi==2024.8.30",
    "charset-normalizer==3.4.0",
    "jinja2==3.1.4",
    "markupsafe==2.1.5",
    "packaging==24.1",
    "attrs==24.2.0",
    "click==8.1.7",
    "python-dateutil==2.9.0.post0",
    "six==1.16.0",
    "pyyaml==6.0.2",
    "rich==13.9.2",
    "pygments==2.18.0",
    "markdown-it-py==3.0.0",
    "mdurl==0.1.2",
]
RELEASE = "urllib3==2.2.2"  # the watched package's release under test replaces the product's pin


def download() -> None:
    """Fetch the wheels once, with the machine's own pip configuration."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    for pin in [*PRODUCT, RELEASE]:
        name, version = pin.split("==")
        if not any(_matches(wheel, name, version) for wheel in WHEELS.glob("*.whl")):
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
                + ["--no-deps", "--dest", str(WHEELS), pin],
                check=True,
            )


def _matches(wheel: Path, name: str, version: str) -> bool:
    found, found_version, _, _ = parse_wheel_filename(wheel.name)
    return found == name.lower().replace("_", "-") and str(found_version) == version


@contextmanager
def static_index(root: Path) -> Iterator[str]:
    """Serve the wheels as a PEP 503 index on 127.0.0.1; yield its simple URL."""
    projects: dict[str, list[str]] = {}
    (root / "files").mkdir(parents=True)
    for wheel in WHEELS.glob("*.whl"):
        name = str(parse_wheel_filename(wheel.name)[0])
        shutil.copy2(wheel, root / "files" / wheel.name)
        projects.setdefault(name, []).append(wheel.name)
    for name, files in projects.items():
        page = root / "simple" / name / "index.html"
        page.parent.mkdir(parents=True)
        links = "".join(f'<a href="../../files/{html.escape(f)}">{f}</a>\n' for f in files)
        page.write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()


def build(root: Path, index: str, installer: str) -> float:
    """Build the release's environment under ``root``; return the seconds it took."""
    started = time.perf_counter()
    environment = Environments(root).ensure(index, PRODUCT, [RELEASE], installer=installer)
    elapsed = time.perf_counter() - started
    assert environment.dependencies()["urllib3"] == "2.2.2"
    shutil.rmtree(environment.path)  # the next round builds it again, caches kept or not
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    if find_uv() is None:
        sys.exit("uv is not installed: pip install -e '.[dev]'")
    download()
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch, static_index(Path(scratch, "index")) as index:
        pip_cache = Path(scratch, "pip-cache")
        os.environ["XDG_CACHE_HOME"] = str(pip_cache)  # pip's cache; uv's is the state folder's
        warm_root = Path(scratch, "warm")
        for installer in ("pip", "uv"):
            build(warm_root, index, installer)  # fills the caches for the warm rounds
        for number in range(rounds):
            for installer in ("pip", "uv"):
                shutil.rmtree(pip_cache, ignore_errors=True)
                cold = build(Path(scratch, f"cold-{installer}-{number}"), index, installer)
                times.setdefault(f"{installer} cold", []).append(cold)
                warm = build(warm_root, index, installer)
                times.setdefault(f"{installer} warm", []).append(warm)
    print(f"{len(PRODUCT)} pinned distributions, {rounds} rounds, {os.cpu_count()} CPUs")
    print("| build | fastest | median |\n|---|---|---|")
    for label, values in times.items():
        print(f"| {label} | {min(values):.2f} s | {statistics.median(values):.2f} s |")
    for state in ("cold", "warm"):
        ratio = statistics.median(times[f"uv {state}"]) / statistics.median(times[f"pip {state}"])
        print(f"uv/pip {state} (median): {ratio:.2f}")


if __name__ == "__main__":
    main()
