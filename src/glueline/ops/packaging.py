"""The deployable artifacts, derived from the package's boundaries and built reproducibly.

    Lambda zip          services/lambda/*.py at the root + glueline.shared + glueline.intake
    Glue job script     services/glue/ETL_Job_to_RDS.py
    Glue job library    glueline.shared + glueline.job (the job's --extra-py-files)
    Glue job wheels     psycopg for Glue's platform and Python (the job's --additional-python-modules,
                        installed from S3 with --no-index: the job needs no internet)

A subpackage ships whole or not at all, so what runs where is decided by where a module lives, not by a
list: ``shared`` may use only the standard library and boto3 (both runtimes have them), ``intake`` the
same (the Lambda runtime), ``job`` also what Glue 5 provides (pyspark, numpy, pyarrow) and psycopg (from
``--additional-python-modules``). Nothing else of glueline (CLI, settings, the local stack) is shipped;
``tests/unit/test_packaging.py`` imports each artifact in an interpreter that has only its runtime's
modules. Identical inputs give byte-identical zips, so bootstrap compares hashes and leaves a deployed
artifact alone when nothing changed.

The wheels are downloaded once per Glue Python version into the user's cache (``~/.cache/glueline``),
so deploying needs PyPI (or ``PIP_INDEX_URL``'s mirror) the first time only.

``services/`` and ``data/samples/`` live beside the package in a source checkout and inside it
(``glueline/_bundled/``) in a wheel, so an installed glueline deploys and runs the same files.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../glueline

LAMBDA_PACKAGES = ("shared", "intake")
GLUE_PACKAGES = ("shared", "job")
LAMBDA_HANDLER = "handler.lambda_handler"
GLUE_SCRIPT = "ETL_Job_to_RDS.py"
GLUE_LIBRARY = "glueline-lib.zip"
GLUE_WHEELS = "wheels/"  # under scripts/
PSYCOPG_REQUIREMENT = "psycopg[binary]==3.3.9"
GLUE_PYTHON = {"4.0": "3.10", "5.0": "3.11", "5.1": "3.11"}  # AWS Glue version → its Python
GLUE_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")  # Glue's workers: x86_64 Linux

# Files that ship with the package from outside it: where they are in a source checkout.
_CHECKOUT_PATHS = {"services": "services", "samples": "data/samples"}


def bundled(name: str) -> Path:
    """``services`` or ``samples``: inside an installed wheel, else in the source checkout."""
    inside = PACKAGE_DIR / "_bundled" / name
    return inside if inside.is_dir() else PACKAGE_DIR.parents[1] / _CHECKOUT_PATHS[name]


def package_files(packages: tuple[str, ...]) -> dict[str, bytes]:
    """``glueline/__init__.py`` and every module of the named subpackages, by archive name."""
    files = {"glueline/__init__.py": (PACKAGE_DIR / "__init__.py").read_bytes()}
    for package in packages:
        for path in sorted((PACKAGE_DIR / package).rglob("*.py")):
            files[f"glueline/{path.relative_to(PACKAGE_DIR).as_posix()}"] = path.read_bytes()
    return files


def lambda_zip() -> bytes:
    handler_dir = bundled("services") / "lambda"
    files = {p.name: p.read_bytes() for p in sorted(handler_dir.glob("*.py"))}
    return _zip({**files, **package_files(LAMBDA_PACKAGES)})


def glue_library_zip() -> bytes:
    return _zip(package_files(GLUE_PACKAGES))


def glue_script() -> bytes:
    return (bundled("services") / "glue" / GLUE_SCRIPT).read_bytes()


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    return buffer.getvalue()


class WheelError(RuntimeError):
    pass


def glue_wheels(glue_version: str) -> list[Path]:
    """The wheels of what the job needs beyond Glue's own modules (psycopg and what it requires), for
    Glue's platform and Python; downloaded once into the user's cache."""
    python = GLUE_PYTHON[glue_version]
    tag = hashlib.sha256(f"{PSYCOPG_REQUIREMENT}|{python}|{GLUE_PLATFORMS}".encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "glueline" / "wheels" / tag
    if not (cache / ".complete").exists():
        partial = cache.with_name(cache.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        platforms = [arg for platform in GLUE_PLATFORMS for arg in ("--platform", platform)]
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
        command += [PSYCOPG_REQUIREMENT, "--only-binary=:all:", *platforms, "--python-version", python]
        command += ["--implementation", "cp", "--dest", str(partial)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise WheelError(
                f"could not download {PSYCOPG_REQUIREMENT} for AWS Glue (Python {python}, x86_64 Linux), which "
                f"the job installs from S3: is PyPI (or PIP_INDEX_URL) reachable?\n{result.stderr.strip()[-1000:]}"
            )
        (partial / ".complete").touch()
        shutil.rmtree(cache, ignore_errors=True)
        partial.rename(cache)
    return sorted(cache.glob("*.whl"))
