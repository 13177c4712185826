"""The package's C kernels, compiled for this machine on first use into one library loaded with ctypes:
native_gbce.c (the gBCE loss and its gradients) and native_random.c (torch's CPU random numbers, drawn faster).

The kernels are optional: without a C compiler, with GSASREC_NATIVE=0, or where compiling fails, `library()`
returns None and training takes torch's path, which gives the same loss and gradients up to float rounding
(tests/test_native.py) and the same random numbers (tests/test_mersenne.py). The shared object is built with
-march=native, so its cached file is named by a hash of the sources, the compiler's version and this CPU's flags:
a home directory shared by different machines gets one build per kind of CPU, never one that would stop on an
instruction the CPU lacks.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from gsasrec.errors import GSASRecError

SOURCES = [Path(__file__).with_name(name) for name in ("native_gbce.c", "native_random.c")]
# -ffast-math lets the loss's exp and log1p run on vectors (glibc's libmvec). It is given to the compile step
# only: linked with it, a shared object sets the CPU's flush-to-zero and denormals-are-zero bits for the whole
# process when it loads (crtfastmath.o), and every float op of torch, numpy and Python after it would treat
# subnormal numbers as zero (tests/test_native.py checks they do not).
COMPILE_FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp-simd", "-fPIC", "-pthread"]
LINK_FLAGS = ["-shared", "-pthread"]
ENVIRONMENT_SWITCH = "GSASREC_NATIVE"

SWITCH_VALUES = {"1": True, "true": True, "on": True, "yes": True, "0": False, "false": False, "off": False,
                 "no": False}


def enabled() -> bool:
    """GSASREC_NATIVE: 1 (the default; or true, on, yes) or 0 (false, off, no: torch's path only)."""
    value = os.environ.get(ENVIRONMENT_SWITCH, "1")
    if value.strip().lower() not in SWITCH_VALUES:
        raise GSASRecError(f"environment variable {ENVIRONMENT_SWITCH} must be 1 or 0 (true/false, on/off, "
                           f"yes/no), got {value!r}")
    return SWITCH_VALUES[value.strip().lower()]


def library() -> ctypes.CDLL | None:
    """The compiled kernel, or None where it is switched off or cannot be built here (built once per process)."""
    return _built() if enabled() else None


def available() -> bool:
    """Whether a CPU run here takes the kernel (config.json records it: its sums round differently from torch's)."""
    return library() is not None


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "gsasrec" / "native"


def _compiler() -> str | None:
    return next((c for c in (os.environ.get("CC"), "cc", "gcc", "clang") if c and shutil.which(c)), None)


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() + platform.machine()


@functools.cache
def _built() -> ctypes.CDLL | None:
    return _build_and_load()


def _build_and_load() -> ctypes.CDLL | None:
    compiler = _compiler()
    if compiler is None or platform.system() == "Windows":
        return None
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
        sources = [source.read_text() for source in SOURCES]
        key = hashlib.sha256("\n".join([*sources, compiler, version, _cpu_flags(), *COMPILE_FLAGS,
                                        *LINK_FLAGS]).encode())
        target = cache_dir() / f"gbce-{key.hexdigest()[:16]}.so"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # Built under a temporary name and renamed: a process that finds the file finds it whole.
            with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
                built = Path(scratch) / target.name
                objects = [str(Path(scratch) / f"{source.stem}.o") for source in SOURCES]
                for source, compiled in zip(SOURCES, objects):
                    _run([compiler, *COMPILE_FLAGS, "-c", str(source), "-o", compiled])
                _run([compiler, *LINK_FLAGS, *objects, "-o", str(built), "-lm"])
                os.replace(built, target)
        return _declare(ctypes.CDLL(str(target)))
    except (OSError, subprocess.SubprocessError):
        return None


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    pointer, size = ctypes.c_void_p, ctypes.c_int64
    lib.gsasrec_gbce.restype = ctypes.c_int
    lib.gsasrec_gbce.argtypes = [pointer, size, size, pointer, size, pointer, pointer, size, ctypes.c_double,
                                 ctypes.c_double, pointer, pointer, pointer, pointer, pointer, ctypes.c_int]
    lib.gsasrec_random_ints.restype = ctypes.c_int
    lib.gsasrec_random_ints.argtypes = [pointer, pointer, size, size, size, size, size]
    lib.gsasrec_random_words.restype = ctypes.c_int
    lib.gsasrec_random_words.argtypes = [pointer, pointer, size]
    lib.gsasrec_random_mask.restype = ctypes.c_int
    lib.gsasrec_random_mask.argtypes = [pointer, pointer, size, ctypes.c_int, size, ctypes.c_float, ctypes.c_int]
    return lib
