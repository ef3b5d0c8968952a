"""The deployable artifacts, derived from the package's boundaries and built reproducibly.

    Lambda zip          services/lambda/*.py at the root + glueline.shared + glueline.intake
    Glue job script     services/glue/ETL_Job_to_RDS.py
    Glue job library    glueline.shared + glueline.job (the job's --extra-py-files)

A subpackage ships whole or not at all, so what runs where is decided by where a module lives, not by a
list: ``shared`` may use only the standard library and boto3 (both runtimes have them), ``intake`` the
same (the Lambda runtime), ``job`` also what Glue 5 provides (pyspark, numpy, pyarrow) and psycopg (from
``--additional-python-modules``). Nothing else of glueline (CLI, settings, the local stack) is shipped;
``tests/unit/test_packaging.py`` imports each artifact in an interpreter that has only its runtime's
modules. Identical inputs give byte-identical zips, so bootstrap compares hashes and leaves a deployed
artifact alone when nothing changed.

``services/`` and ``data/samples/`` live beside the package in a source checkout and inside it
(``glueline/_bundled/``) in a wheel, so an installed glueline deploys and runs the same files.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../glueline

LAMBDA_PACKAGES = ("shared", "intake")
GLUE_PACKAGES = ("shared", "job")
LAMBDA_HANDLER = "handler.lambda_handler"
GLUE_SCRIPT = "ETL_Job_to_RDS.py"
GLUE_LIBRARY = "glueline-lib.zip"

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
