"""Build the fastmf C kernels (csrc/) and their Cython wrappers (fastmf/_*.pyx).

Switches (environment variables read at build time):

``FASTMF_OPENMP``
    ``auto`` (default): probe the compiler for OpenMP by compiling and linking a tiny program; use it
    when it works, otherwise warn and build the serial kernels. ``0``: build serial. ``1``: require
    OpenMP and fail the build when the probe fails.
``FASTMF_DEBUG``
    ``1``: ``-O0 -g``, C assertions on, Cython bounds and wraparound checks on (for CI and debugging).
``FASTMF_SANITIZE``
    ``1``: build with AddressSanitizer and UndefinedBehaviorSanitizer (``-fsanitize=address,undefined``,
    UB is fatal, ``-O1 -g``; GCC/Clang only). Python itself is not instrumented, so run the tests
    with the ASan runtime preloaded (``.ci/run`` shows how); for CI's sanitizer job only.
``FASTMF_CFLAGS``
    extra compiler flags, e.g. ``-march=native`` for a local build tuned to this CPU. The default
    build never uses ``-march=native`` or ``-ffast-math`` so wheels stay portable and results exact.
``FASTMF_BUILD_JOBS``
    how many compiler processes run at once (default: the CPU count; ``-j N`` on the command line
    also sets it). The C files of all extensions are compiled in parallel, the biggest first.
"""

import glob
import os
import shlex
import sys
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))

# Each wrapper fastmf/_NAME.pyx is linked with csrc/common.c and csrc/NAME.c (when present) plus the
# extra C files listed here (the modules they serve share them: the SGD family's random streams and
# block scheduler; the Gibbs sampler's normals).
EXTRA_SOURCES = {"fastmf._sgd": ["csrc/rng.c", "csrc/blocks.c"], "fastmf._als": ["csrc/rng.c", "csrc/ialspp.c"],
                 "fastmf._svdpp": ["csrc/rng.c", "csrc/blocks.c"]}


def kernel_modules():
    """{module name: C sources} for every fastmf/_*.pyx."""
    mods = {}
    for pyx in sorted(glob.glob(os.path.join(HERE, "fastmf", "_*.pyx"))):
        stem = os.path.splitext(os.path.basename(pyx))[0]
        own = os.path.join("csrc", stem[1:] + ".c")
        sources = [own] if os.path.exists(os.path.join(HERE, own)) else []
        mods["fastmf." + stem] = sources + EXTRA_SOURCES.get("fastmf." + stem, [])
    return mods

OPENMP_PROBE = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return (n >= 1 && omp_get_max_threads() >= 1) ? 0 : 1;
}
"""

# (compile flags, link flags) to try, in order, per compiler family.
OPENMP_FLAGS = {
    "msvc": [(["/openmp"], [])],
    "unix": [(["-fopenmp"], ["-fopenmp"]), (["-Xpreprocessor", "-fopenmp"], ["-lomp"])],
}


def probe_openmp(compiler, candidates):
    """Return the first (compile_flags, link_flags) pair with which a tiny OpenMP program compiles and
    links, or None when none does."""
    for cflags, lflags in candidates:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "omp_probe.c")
            with open(src, "w") as fh:
                fh.write(OPENMP_PROBE)
            try:
                objects = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
                compiler.link_executable(objects, "omp_probe", output_dir=tmp, extra_postargs=lflags)
            except Exception:  # CompileError, LinkError: any failure means "not this pair"
                continue
        return cflags, lflags
    return None


def compiler_accepts(compiler, flags):
    """True when a trivial C file compiles with ``flags``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "flag_probe.c")
        with open(src, "w") as fh:
            fh.write("int main(void) { return 0; }\n")
        try:
            compiler.compile([src], output_dir=tmp, extra_postargs=list(flags))
        except Exception:
            return False
    return True


def jobs():
    """Number of compiler processes to run at once: FASTMF_BUILD_JOBS, else the CPU count."""
    try:
        n = int(os.environ.get("FASTMF_BUILD_JOBS", "0"))
    except ValueError:
        n = 0
    return n if n > 0 else (os.cpu_count() or 1)


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def cold(src):
    """The Cython-generated wrappers fastmf/_*.c: argument checks and glue, no loop that runs per
    rating (the kernels are in csrc/). They build at -O2, a third faster to compile than -O3."""
    return os.path.basename(os.path.dirname(os.path.abspath(src))) == "fastmf" and \
        os.path.basename(src).startswith("_")


def parallel_compile(compiler, slots):
    """Make ``compiler.compile`` compile its sources in threads, at most ``slots`` compiler processes
    at once over all extensions (setuptools compiles one extension's sources one after another; with
    build_ext's own parallelism across extensions this keeps every core busy). Cold files (see
    ``cold``) get -O2 in place of -O3."""
    sem = threading.BoundedSemaphore(slots)

    def compile(sources, output_dir=None, macros=None, include_dirs=None, debug=0,
                extra_preargs=None, extra_postargs=None, depends=None):
        macros, objects, extra_postargs, pp_opts, build = compiler._setup_compile(
            output_dir, macros, include_dirs, sources, depends, extra_postargs)
        cc_args = compiler._get_cc_args(pp_opts, debug, extra_preargs)

        def one(obj):  # runs holding a slot of sem, which it releases
            try:
                src, ext = build[obj]
                post = ["-O2" if a == "-O3" else a for a in extra_postargs] if cold(src) else extra_postargs
                compiler._compile(obj, src, ext, cc_args, post, pp_opts)
            finally:
                sem.release()

        todo = sorted((obj for obj in objects if obj in build), key=lambda o: -_size(build[o][0]))
        with ThreadPoolExecutor(max(1, len(todo))) as pool:
            futures = []
            for obj in todo:
                sem.acquire()  # slots are taken in this order: the biggest file starts first
                futures.append(pool.submit(one, obj))
            for fut in futures:
                fut.result()  # re-raises the first CompileError
        return objects

    compiler.compile = compile


class BuildExt(build_ext):
    """build_ext that adds OpenMP when the compiler supports it, and the debug/optimisation flags, and
    compiles in parallel (extensions and the C files within one) on all cores by default."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:  # `-j N` / `--parallel N` still wins
            self.parallel = jobs()

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        mode = os.environ.get("FASTMF_OPENMP", "auto").strip().lower()
        debug = os.environ.get("FASTMF_DEBUG", "0").strip() not in ("", "0")
        omp = None
        if mode not in ("0", "off", "false", "no"):
            omp = probe_openmp(self.compiler, OPENMP_FLAGS.get(ctype, OPENMP_FLAGS["unix"]))
            if omp is None:
                if mode in ("1", "on", "true", "yes"):
                    raise RuntimeError("FASTMF_OPENMP=1 but the compiler cannot build an OpenMP program")
                warnings.warn(
                    "fastmf: OpenMP not available with this compiler; building the serial kernels "
                    "(set CC to an OpenMP-capable compiler for multi-threaded training)"
                )
        cflags, lflags = omp if omp else ([], [])
        if not omp and ctype != "msvc" and compiler_accepts(self.compiler, ["-fopenmp-simd"]):
            cflags = ["-fopenmp-simd"]  # honour `#pragma omp simd` in the serial build too
        if ctype == "msvc":
            opt = ["/Od", "/Zi"] if debug else ["/O2"]
        else:
            opt = ["-O0", "-g", "-UNDEBUG"] if debug else ["-O3"]
            opt += ["-Wall", "-Wno-unused-function", "-Wno-unreachable-code"]
        sanitize = os.environ.get("FASTMF_SANITIZE", "0").strip() not in ("", "0")
        san_link = []
        if sanitize:
            if ctype == "msvc":
                raise RuntimeError("FASTMF_SANITIZE=1 needs GCC or Clang")
            san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                   "-fno-omit-frame-pointer", "-g"]
            opt = [a for a in opt if a != "-O3"] + ["-O1"] + san
            san_link = san
        opt += shlex.split(os.environ.get("FASTMF_CFLAGS", ""))
        for ext in self.extensions:
            ext.extra_compile_args = list(ext.extra_compile_args) + opt + cflags
            ext.extra_link_args = list(ext.extra_link_args) + lflags + san_link
        print(f"fastmf: OpenMP {'on ' + ' '.join(cflags) if omp else 'off'}; debug={debug}; sanitize={sanitize}; "
              f"{self.parallel} parallel jobs")
        if ctype != "msvc":  # MSVC's compile() batches its own sources; leave it alone
            parallel_compile(self.compiler, max(1, int(self.parallel)))
            # the extension with the most C first (_sgd: csrc/sgd.c is the longest compile)
            self.extensions.sort(key=lambda e: -sum(_size(s) for s in e.sources))
        super().build_extensions()


def extensions():
    import numpy
    from Cython.Build import cythonize

    debug = os.environ.get("FASTMF_DEBUG", "0").strip() not in ("", "0")
    exts = []
    for name, sources in kernel_modules().items():
        pyx = name.replace(".", "/") + ".pyx"
        exts.append(
            Extension(
                name,
                [pyx, "csrc/common.c", *sources],
                include_dirs=["csrc", numpy.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
                + ([] if debug else [("NDEBUG", "1")]),
            )
        )
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": debug,
        "initializedcheck": debug,
        "cdivision": not debug,
        "embedsignature": True,
    }
    # Cython translates the .pyx files in worker processes (fork: Linux only, to keep it simple)
    nthreads = jobs() if sys.platform.startswith("linux") else 0
    return cythonize(exts, compiler_directives=directives, quiet=True,
                     nthreads=nthreads if nthreads > 1 else 0)


if __name__ == "__main__":
    setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
