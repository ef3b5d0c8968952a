"""The deployable artifacts, derived from the package's boundaries and built reproducibly.

    Lambda zip          services/lambda/*.py at the root + glueline.shared + glueline.intake
                        + boto3 and botocore at glueline's own pinned versions
    Glue job script     services/glue/ETL_Job_to_RDS.py (and the login job's: ETL_DB_Login.py)
    Glue job library    glueline.shared + glueline.job (the job's --extra-py-files)
    Glue job wheels     psycopg, boto3 and botocore for Glue's platform and Python (the job's
                        --additional-python-modules, installed from S3 with --no-index: no internet)

boto3 ships with both artifacts rather than being taken from the runtime: the code uses recent S3
parameters (CopyObject ``IfNoneMatch``, DeleteObject ``IfMatch``) that an older runtime's botocore
refuses with ``ParamValidationError``, and a runtime's boto3 changes when AWS updates it. The pins are
glueline's own (``pyproject.toml``), read from the installed distributions: one version everywhere.

A subpackage ships whole or not at all, so what runs where is decided by where a module lives, not by a
list: ``shared`` may use only the standard library and boto3 (both runtimes have them), ``intake`` the
same (the Lambda runtime), ``job`` also what Glue 5 provides (pyspark, numpy, pyarrow) and psycopg (from
``--additional-python-modules``). Nothing else of glueline (CLI, settings, the local stack) is shipped;
``tests/unit/test_packaging.py`` imports each artifact in an interpreter that has only its runtime's
modules. Identical inputs give byte-identical zips, so deploy compares hashes and leaves a deployed
artifact alone when nothing changed.

The wheels are downloaded once per Glue Python version into the user's cache (``~/.cache/glueline``),
so deploying needs PyPI (or ``PIP_INDEX_URL``'s mirror) the first time only.

``services/`` and ``data/samples/`` live beside the package in a source checkout and inside it
(``glueline/_bundled/``) in a wheel, so an installed glueline deploys and runs the same files.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from glueline.artifacts import (
    GLUE_LIBRARY,
    GLUE_LOGIN_SCRIPT,
    GLUE_PYTHON,
    GLUE_SCRIPT,
    GLUE_WHEELS,
    LAMBDA_PYTHON,
    PACKAGE_DIR,
    PSYCOPG_REQUIREMENT,
)

LAMBDA_PACKAGES = ("shared", "intake")
GLUE_PACKAGES = ("shared", "job")
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


def boto_requirements() -> list[str]:
    """boto3 and botocore pinned to the versions glueline itself runs with."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in ("boto3", "botocore")]


def lambda_zip() -> bytes:
    handler_dir = bundled("services") / "lambda"
    files = {p.name: p.read_bytes() for p in sorted(handler_dir.glob("*.py"))}
    return _zip_with_vendored({**files, **package_files(LAMBDA_PACKAGES)}, tuple(boto_requirements()))


_zips: dict[str, bytes] = {}


def _zip_with_vendored(files: dict[str, bytes], requirements: tuple[str, ...]) -> bytes:
    """Compressing botocore takes seconds and deploy asks for the zip more than once: built once per
    process for the same inputs."""
    key = hashlib.sha256(repr((sorted(files.items()), requirements)).encode()).hexdigest()
    if key not in _zips:
        _zips[key] = _zip({**vendored(list(requirements), LAMBDA_PYTHON), **files})
    return _zips[key]


def vendored(requirements: list[str], python: str) -> dict[str, bytes]:
    """The files of these requirements' wheels (and what they require), as a zip's root holds them."""
    files: dict[str, bytes] = {}
    for wheel in wheels(requirements, python, ()):
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if not name.endswith("/") and ".dist-info/" not in name:
                    files[name] = archive.read(name)
    return files


def glue_library_zip() -> bytes:
    return _zip(package_files(GLUE_PACKAGES))


def glue_script() -> bytes:
    return (bundled("services") / "glue" / GLUE_SCRIPT).read_bytes()


def job_code(name: str, glue_version: str) -> bytes:
    """A file of the job's code by its name under the code prefix: a script, the library, a wheel."""
    if name == GLUE_SCRIPT:
        return glue_script()
    if name == GLUE_LOGIN_SCRIPT:
        return (bundled("services") / "glue" / GLUE_LOGIN_SCRIPT).read_bytes()
    if name == GLUE_LIBRARY:
        return glue_library_zip()
    wheels = {GLUE_WHEELS + wheel.name: wheel for wheel in glue_wheels(glue_version)}
    if name in wheels:
        return wheels[name].read_bytes()
    raise KeyError(f"{name} is not a file of the job's code")


def glue_code_digest() -> str:
    """Which code a Glue run would execute if deployed now: the script and the library, as shipped."""
    return hashlib.sha256(glue_script() + glue_library_zip()).hexdigest()


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
    """The wheels of what the job needs beyond Glue's own modules (psycopg, boto3, botocore and what they
    require), for Glue's platform and Python."""
    return wheels([PSYCOPG_REQUIREMENT, *boto_requirements()], GLUE_PYTHON[glue_version], GLUE_PLATFORMS)


def wheels(requirements: list[str], python: str, platforms: tuple[str, ...]) -> list[Path]:
    """Binary wheels of ``requirements`` for CPython ``python`` on ``platforms`` (none: pure Python
    only), downloaded once into the user's cache."""
    tag = hashlib.sha256(f"{sorted(requirements)}|{python}|{platforms}".encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "glueline" / "wheels" / tag
    if not (cache / ".complete").exists():
        partial = cache.with_name(cache.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        platform_args = [arg for platform in platforms for arg in ("--platform", platform)]
        if not platforms:
            platform_args = ["--platform", "any"]
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
        command += [*requirements, "--only-binary=:all:", *platform_args, "--python-version", python]
        command += ["--implementation", "cp", "--dest", str(partial)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise WheelError(
                f"could not download {', '.join(requirements)} for Python {python}, which deploy ships with "
                f"the pipeline's code: is PyPI (or PIP_INDEX_URL) reachable?\n{result.stderr.strip()[-1000:]}"
            )
        (partial / ".complete").touch()
        shutil.rmtree(cache, ignore_errors=True)
        partial.rename(cache)
    return sorted(cache.glob("*.whl"))
