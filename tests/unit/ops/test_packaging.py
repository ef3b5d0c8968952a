"""The deployable artifacts: derived from package boundaries, importable where they run with only what that
runtime provides, and the same from an installed wheel as from this checkout."""

from __future__ import annotations

import importlib.metadata
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from glueline.ops import packaging

LAMBDA_RUNTIME = ["boto3"]  # the Lambda Python runtime: the standard library and boto3
# Glue 5: the documented modules the job uses (pyspark comes with Spark); what the job adds with
# --additional-python-modules comes from the wheels deploy ships (packaging.glue_wheels).
GLUE_RUNTIME = ["pyspark", "boto3", "numpy", "pandas", "pyarrow"]


def names(archive: bytes) -> list[str]:
    return sorted(zipfile.ZipFile(io.BytesIO(archive)).namelist())


def test_each_artifact_is_its_packages_and_nothing_else():
    lambda_files = names(packaging.lambda_zip())
    assert "handler.py" in lambda_files and "glueline/__init__.py" in lambda_files
    ours = [f for f in lambda_files if f.startswith("glueline/")]
    assert {f.split("/")[1] for f in ours if f.count("/") > 1} == {"shared", "intake"}
    assert {f.split("/")[0] for f in lambda_files if "/" in f} >= {"glueline", "boto3", "botocore"}
    glue_files = names(packaging.glue_library_zip())
    assert {f.split("/")[1] for f in glue_files if f.count("/") > 1} == {"shared", "job"}
    assert "glueline/shared/lifecycle.py" in lambda_files and "glueline/shared/lifecycle.py" in glue_files
    assert packaging.lambda_zip() == packaging.lambda_zip()  # reproducible: deploy compares hashes


def runtime_path(tmp_path: Path, distributions: list[str]) -> Path:
    """A directory holding only these distributions and what they require (links into this venv)."""
    directory = tmp_path / "runtime"
    directory.mkdir()
    seen: set[str] = set()
    todo = list(distributions)
    while todo:
        name = todo.pop()
        dist = importlib.metadata.distribution(name)
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                todo.append(re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0))
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            source = Path(dist.locate_file(top))
            if top.endswith((".dist-info", ".data")) or top == ".." or not source.exists():
                continue
            if not (directory / top).exists():
                (directory / top).symlink_to(source)
    return directory


def import_in_clean_interpreter(paths: list[Path], modules: list[str], absent: list[str]) -> dict:
    """Import ``modules`` in a Python without site-packages, with only ``paths`` added."""
    code = f"""
import importlib, json, sys
sys.path[:0] = {[str(p) for p in paths]!r}
imported = [importlib.import_module(m).__name__ for m in {modules!r}]
missing = []
for name in {absent!r}:
    try:
        importlib.import_module(name)
    except ImportError:
        missing.append(name)
where = importlib.import_module("glueline").__file__
print(json.dumps({{"imported": imported, "missing": missing, "glueline": where}}))
"""
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def modules_of(files: list[str]) -> list[str]:
    return [f[:-3].replace("/", ".").removesuffix(".__init__") for f in files if f.endswith(".py")]


def test_the_lambda_zip_imports_with_the_standard_library_and_boto3(tmp_path):
    code = tmp_path / "function"
    archive = packaging.lambda_zip()
    zipfile.ZipFile(io.BytesIO(archive)).extractall(code)
    result = import_in_clean_interpreter(
        [code, runtime_path(tmp_path, LAMBDA_RUNTIME)],
        [m for m in modules_of(names(archive)) if m == "handler" or m.startswith("glueline")],
        absent=["pydantic", "psycopg", "pyspark", "typer"],
    )
    assert "handler" in result["imported"] and "glueline.intake.intake" in result["imported"]
    assert result["missing"] == ["pydantic", "psycopg", "pyspark", "typer"]  # nothing else was reachable
    assert result["glueline"].startswith(str(code))


def test_both_artifacts_carry_glueline_s_own_boto3_not_the_runtime_s(tmp_path):
    """A runtime's older botocore refuses the S3 parameters the lifecycle uses (ParamValidationError):
    the zip's own botocore, at glueline's pinned version, is the one the function imports."""
    pinned = importlib.metadata.version("botocore")
    code = tmp_path / "function"
    zipfile.ZipFile(io.BytesIO(packaging.lambda_zip())).extractall(code)
    older = tmp_path / "runtime" / "botocore"
    older.mkdir(parents=True)
    (older / "__init__.py").write_text("__version__ = '1.35.0'\n")  # what a runtime of 2024 carried
    probe = (
        f"import sys; sys.path[:0] = [{str(code)!r}, {str(older.parent)!r}]; "
        "import botocore, botocore.session; "
        "model = botocore.session.get_session().get_service_model('s3'); "
        "print(botocore.__version__, 'IfNoneMatch' in model.operation_model('CopyObject').input_shape.members)"
    )
    result = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == [pinned, "True"], result.stderr[-2000:]
    wheels = [w.name for w in packaging.glue_wheels("5.0")]
    assert f"botocore-{pinned}-py3-none-any.whl" in wheels
    assert f"boto3-{importlib.metadata.version('boto3')}-py3-none-any.whl" in wheels


def test_the_glue_library_and_script_import_with_glue_5s_modules(tmp_path):
    library = tmp_path / "glueline-lib.zip"
    library.write_bytes(packaging.glue_library_zip())
    script = tmp_path / "script"
    script.mkdir()
    (script / "etl_job.py").write_bytes(packaging.glue_script())
    (script / "login_job.py").write_bytes(packaging.job_code("ETL_DB_Login.py", "5.0"))
    # What Glue does with --additional-python-modules and --python-modules-installer-option --no-index.
    shipped = tmp_path / "shipped"
    wheels = [str(w) for w in packaging.glue_wheels("5.0")]
    assert any(Path(w).name.startswith("psycopg_binary-") and "cp311" in w and "x86_64" in w for w in wheels)
    subprocess.run(  # with their requirements, from nothing but the shipped wheels
        [sys.executable, "-m", "pip", "install", "--no-index", "-q", "--target", str(shipped), *wheels],
        check=True,
        capture_output=True,
    )
    result = import_in_clean_interpreter(
        [script, library, runtime_path(tmp_path, GLUE_RUNTIME), shipped],
        ["etl_job", "login_job", "psycopg", *modules_of(names(library.read_bytes()))],
        absent=["pydantic", "typer", "rich", "glueline.ops", "glueline.local"],
    )
    assert {"etl_job", "login_job", "glueline.job.load", "glueline.job.login"} <= set(result["imported"])
    assert result["missing"] == ["pydantic", "typer", "rich", "glueline.ops", "glueline.local"]
    assert result["glueline"].startswith(str(library))


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """glueline built as a wheel and installed into a directory of its own."""
    project = Path(packaging.__file__).resolve().parents[3]
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(project),
        ],
        check=True,
        capture_output=True,
    )
    target = tmp_path_factory.mktemp("installed")
    (wheel,) = wheels.glob("glueline-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    return target


def test_an_installed_wheel_deploys_the_same_artifacts_as_this_checkout(installed_wheel):
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    code = """
import hashlib, json
from glueline.ops import packaging
print(json.dumps({
    "lambda": hashlib.sha256(packaging.lambda_zip()).hexdigest(),
    "library": hashlib.sha256(packaging.glue_library_zip()).hexdigest(),
    "script": hashlib.sha256(packaging.glue_script()).hexdigest(),
    "samples": sorted(p.name for p in packaging.bundled("samples").iterdir()),
    "services": str(packaging.bundled("services")),
}))
"""
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            f"import sys; sys.path[:0] = {[str(installed_wheel), site_packages]!r}\n{code}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from_wheel = json.loads(result.stdout)
    import hashlib

    assert from_wheel["services"].startswith(str(installed_wheel))  # not the checkout it was built from
    assert from_wheel["lambda"] == hashlib.sha256(packaging.lambda_zip()).hexdigest()
    assert from_wheel["library"] == hashlib.sha256(packaging.glue_library_zip()).hexdigest()
    assert from_wheel["script"] == hashlib.sha256(packaging.glue_script()).hexdigest()
    assert from_wheel["samples"] == sorted(p.name for p in packaging.bundled("samples").iterdir())
