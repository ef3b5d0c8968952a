"""The deployable artifacts: the Lambda zip and the Glue job's helper library, built reproducibly.

Both carry the shared modules they import from ``glueline`` and nothing else (no CLI, no settings, no
third-party code: the Lambda runtime provides boto3, Glue provides pyspark and installs psycopg from
``--additional-python-modules``). Identical inputs give byte-identical zips, so bootstrap can compare
hashes and leave a deployed artifact alone when nothing changed.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent

LAMBDA_MODULES = ("__init__.py", "contract.py", "layout.py", "audit.py", "integrity.py", "intake.py")
GLUE_MODULES = (
    "__init__.py",
    "contract.py",
    "layout.py",
    "audit.py",
    "integrity.py",
    "schema.py",
    "csvscan.py",
    "dbsecret.py",
    "transform.py",
    "load.py",
    "jobargs.py",
    "localspark.py",
)
LAMBDA_HANDLER = "handler.lambda_handler"
GLUE_SCRIPT = "ETL_Job_to_RDS.py"
GLUE_LIBRARY = "glueline-lib.zip"


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    return buffer.getvalue()


def _modules(names: tuple[str, ...]) -> dict[str, bytes]:
    return {f"glueline/{name}": (PACKAGE_DIR / name).read_bytes() for name in names}


def lambda_zip(services_dir: Path) -> bytes:
    handler_dir = Path(services_dir) / "lambda"
    files = {p.name: p.read_bytes() for p in sorted(handler_dir.glob("*.py"))}
    return _zip({**files, **_modules(LAMBDA_MODULES)})


def glue_library_zip() -> bytes:
    return _zip(_modules(GLUE_MODULES))


def glue_script(services_dir: Path) -> bytes:
    return (Path(services_dir) / "glue" / GLUE_SCRIPT).read_bytes()
