"""Images for machines that reach no container registry: stand-ins built from Debian's packages and PyPI.

    glueline-offline/debian:bookworm|trixie     debootstrap --variant=minbase, then ``docker import``
    glueline-offline/postgres:15                in place of postgres:16 (Debian 12 ships PostgreSQL 15)
    glueline-offline/ministack:<our pin>        in place of ministackorg/ministack:<our pin>, on Debian 13's
                                                Python 3.13: MiniStack runs Lambdas in its own interpreter,
                                                so it is the Lambda runtime's version (python3.13)
    glueline-offline/spark:3.5-python3.11       in place of public.ecr.aws/glue/aws-glue-libs:5
                                                (Spark 3.5, Python 3.11, Java 17; no awsglue, no S3A)

A stand-in never carries an upstream image's name. Python packages are downloaded on the host into a
wheelhouse (pip there uses the host's CA bundle, ``PIP_CERT`` and proxy, which a container behind a
TLS-intercepting proxy lacks) and installed in the image with ``--no-index``: the same versions the
embedded stack runs (the host's installed distributions constrain the download). Debian packages come
over the mirror debootstrap used. Caches: the wheelhouse in ``~/.cache/glueline/wheelhouse``, Docker's
layer cache, the base image (made only when missing): a second build takes seconds.

``record_path()`` records the stand-ins' names; the compose stack uses them for every image
not set explicitly (``GLUELINE_*_IMAGE``), and MiniStack as the emulator (LocalStack has no stand-in: its
DynamoDB and Lambda download parts at run time).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from glueline.artifacts import LAMBDA_PYTHON, PSYCOPG_REQUIREMENT

DEBIAN_MIRROR = os.environ.get("GLUELINE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
GLUE_PYTHON = "3.11"  # AWS Glue 5's
# The Debian release whose python3 is each version a stand-in needs.
DEBIAN_SUITES = {"3.11": "bookworm", "3.13": "trixie"}
# PyPI publishes these as source only; they are pure Python, so a wheel built on the host serves any platform.
SOURCE_ONLY = ("pyspark",)


class ImageError(RuntimeError):
    pass


def pinned(name: str) -> str:
    """``name==version`` as glueline requires it (its own pins), else as installed here."""
    for requirement in importlib.metadata.requires("glueline") or []:
        spec = requirement.split(";")[0].strip()
        if spec.split("==")[0].split("[")[0].lower() == name:
            return spec
    return f"{name}=={importlib.metadata.version(name)}"


def stand_ins() -> dict[str, dict]:
    """Each stand-in: its name, the setting it fills, its build directory and its Python requirements."""
    ministack = pinned("ministack").split("==")[1]
    pyspark = pinned("pyspark").split("==")[1]
    spark_tag = f"{'.'.join(pyspark.split('.')[:2])}-python{GLUE_PYTHON}"
    return {
        "postgres": {
            "image": "glueline-offline/postgres:15",
            "setting": "postgres_image",
            "python": GLUE_PYTHON,  # only its Debian release (12, PostgreSQL 15): no Python package is installed
            "requirements": [],
        },
        "ministack": {
            "image": f"glueline-offline/ministack:{ministack}",
            "setting": "ministack_image",
            "python": LAMBDA_PYTHON,
            "requirements": [pinned("ministack"), pinned("boto3"), pinned("botocore")],
        },
        "spark": {
            "image": f"glueline-offline/spark:{spark_tag}",
            "setting": "glue_base_image",
            "python": GLUE_PYTHON,
            "requirements": [pinned(n) for n in ("pyspark", "pyarrow", "pandas", "numpy", "boto3", "botocore")],
        },
    }


def base_image(python: str) -> str:
    """The Debian base image whose python3 is ``python``."""
    return f"glueline-offline/debian:{DEBIAN_SUITES[python]}"


def record_path() -> Path:
    """Where the stand-ins are recorded: beside the caches, as they belong to this machine's Docker
    engine, not to a checkout (``make clean`` keeps them)."""
    return _cache_dir() / "offline-images.json"


def recorded() -> dict[str, str]:
    """The settings the last ``make images-offline`` recorded (empty when it never ran here)."""
    path = record_path()
    return json.loads(path.read_text()) if path.exists() else {}


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "glueline"


def docker(*args: str, capture: bool = True, stdin=None) -> str:
    result = subprocess.run(["docker", *args], capture_output=capture, text=True, stdin=stdin)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()[-2000:] if capture else ""
        raise ImageError(f"docker {' '.join(args[:2])} failed: {detail}")
    return result.stdout if capture else ""


def image_exists(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True).returncode == 0


def engine_platforms() -> list[str]:
    """The wheel platform tags of the Docker engine's architecture (not necessarily the host's)."""
    architecture = docker("info", "--format", "{{.Architecture}}").strip()
    machine = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(architecture)
    if machine is None:
        raise ImageError(f"no wheels for the Docker engine's architecture {architecture!r}")
    return [f"manylinux2014_{machine}", f"manylinux_2_28_{machine}"]


def _constraints() -> list[str]:
    """What is installed here, so transitive dependencies match the embedded stack's."""
    return sorted(
        f"{dist.metadata['Name']}=={dist.version}"
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"] and dist.metadata["Name"].lower() != "glueline"
    )


def wheelhouse(
    requirements: list[str], platforms: list[str], python: str = GLUE_PYTHON, log: Callable[[str], None] = print
) -> Path:
    """A directory of wheels for ``requirements`` (the given Python version and platforms) and a
    requirements.txt naming them; downloaded once, kept in the user's cache."""
    constraints = _constraints()
    key = hashlib.sha256(json.dumps([requirements, platforms, python, constraints]).encode()).hexdigest()[:16]
    cache = _cache_dir() / "wheelhouse" / key
    if (cache / "requirements.txt").exists():
        return cache
    log(f"downloading wheels: {', '.join(requirements)}")
    partial = Path(tempfile.mkdtemp(prefix="wheelhouse-"))
    try:
        constraint_file = partial / "constraints.txt"
        constraint_file.write_text("\n".join(c for c in constraints if c.split("==")[0].lower() not in SOURCE_ONLY))
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
        source_only = [r for r in requirements if r.split("==")[0].lower() in SOURCE_ONLY]
        binary = [r for r in requirements if r not in source_only]
        for requirement in source_only:  # built here (pure Python), its dependencies downloaded below
            _pip([*pip, "wheel", "--no-deps", "--wheel-dir", str(partial), requirement])
            dependencies = importlib.metadata.requires(requirement.split("==")[0]) or []
            binary += [r for r in dependencies if ";" not in r]
        platform_args = [arg for platform in platforms for arg in ("--platform", platform)]
        _pip(
            [*pip, "download", "--only-binary=:all:", *platform_args, "--python-version", python]
            + ["--implementation", "cp", "--constraint", str(constraint_file), "--dest", str(partial), *binary]
        )
        constraint_file.unlink()
        (partial / "requirements.txt").write_text("\n".join(requirements) + "\n")
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(cache, ignore_errors=True)
        shutil.move(str(partial), cache)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return cache


def _pip(command: list[str]) -> None:
    # pip's own configuration (index, find-links, cert, proxy) applies; a constraint file configured for
    # the host would fight our --constraint, so it is switched off.
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PIP_CONSTRAINT": ""})
    if result.returncode != 0:
        raise ImageError(f"pip could not fetch wheels (is PyPI or PIP_INDEX_URL reachable?):\n{result.stderr[-2000:]}")


def build_base(python: str, log: Callable[[str], None] = print) -> str:
    """The Debian base image whose python3 is ``python``, from Debian's packages only; made once."""
    image, suite = base_image(python), DEBIAN_SUITES[python]
    if image_exists(image):
        return image
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is needed to build the offline base image: apt-get install debootstrap")
    log(f"debootstrap {suite} from {DEBIAN_MIRROR} (about 30 s)")
    with tempfile.TemporaryDirectory(prefix="glueline-rootfs-") as rootfs:
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", suite, rootfs, DEBIAN_MIRROR], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise ImageError(f"debootstrap failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        archive = tar.stdout
        assert archive is not None  # a pipe, asked for above
        try:
            docker("import", "-", image, stdin=archive)
        finally:
            archive.close()
            tar.wait()
    return image


def build_offline_images(project_dir: Path, log: Callable[[str], None] = print) -> dict[str, str]:
    """Build every stand-in (cached), record them for the compose stack; the recorded settings."""
    platforms = engine_platforms()
    settings = {"emulator": "ministack"}
    for name, spec in stand_ins().items():
        base = build_base(spec["python"], log)
        with tempfile.TemporaryDirectory(prefix=f"glueline-{name}-") as context:
            shutil.copytree(project_dir / "compose" / "offline" / name, context, dirs_exist_ok=True)
            wheels = Path(context) / "wheels"
            if spec["requirements"]:
                shutil.copytree(wheelhouse(spec["requirements"], platforms, spec["python"], log), wheels)
            else:
                wheels.mkdir()
            log(f"building {spec['image']}")
            docker("build", "--quiet", "--build-arg", f"BASE_IMAGE={base}", "--tag", spec["image"], context)
        settings[spec["setting"]] = spec["image"]
    path = record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return settings


def glue_wheels(project_dir: Path, log: Callable[[str], None] = print) -> Path:
    """What services/glue/Dockerfile installs on the Glue image: psycopg (Glue 5 lacks it) and debugpy (a
    ``--debug`` run's driver), into the build context; the runner and the job's library come from src/glueline."""
    directory = project_dir / ".glueline" / "build" / "glue-wheels"
    source = wheelhouse([PSYCOPG_REQUIREMENT, pinned("debugpy")], engine_platforms(), GLUE_PYTHON, log)
    if directory.exists() and sorted(p.name for p in directory.iterdir()) == sorted(p.name for p in source.iterdir()):
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    shutil.copytree(source, directory)
    return directory
