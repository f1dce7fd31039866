# Declarations shared by the Cython wrappers of csrc/ (cimported, never imported): the status codes
# and the one error record every C kernel reports through (csrc/common.h), the mapping of a failed
# status to its Python exception type, the OpenMP probes, and the fused float type of the kernels
# that come in float32 and float64.

from libc.stdint cimport int64_t

ctypedef fused floating:
    float
    double


cdef extern from "common.h":
    ctypedef enum fastmf_status:
        FASTMF_OK
        FASTMF_ERR_NOMEM
        FASTMF_ERR_INDEX
        FASTMF_ERR_VALUE
        FASTMF_ERR_NOT_PD
        FASTMF_ERR_DIVERGED
        FASTMF_ERR_PARSE
        FASTMF_ERR_INTERRUPTED
    ctypedef int fastmf_interrupt   # C: volatile int (read by the kernels between rows)
    ctypedef struct fastmf_error:
        fastmf_status status
        int which
        int64_t pos
    int fastmf_openmp_enabled() nogil
    int fastmf_max_threads() nogil


cdef inline object error_type(fastmf_status st):
    """The exception type a wrapper raises for a failed status (the message, with the context of
    err.pos and err.which, is the wrapper's): NOMEM -> MemoryError, INDEX -> IndexError, VALUE ->
    ValueError, NOT_PD -> numpy.linalg.LinAlgError, DIVERGED -> FloatingPointError, anything else
    (a status a wrapper does not expect) -> RuntimeError."""
    if st == FASTMF_ERR_NOMEM:
        return MemoryError
    if st == FASTMF_ERR_INDEX:
        return IndexError
    if st == FASTMF_ERR_VALUE:
        return ValueError
    if st == FASTMF_ERR_NOT_PD:
        import numpy
        return numpy.linalg.LinAlgError
    if st == FASTMF_ERR_DIVERGED:
        return FloatingPointError
    return RuntimeError


cdef inline unexpected(str what, fastmf_error err):
    """The RuntimeError of a failure a wrapper has no message for (a bug, or a new kernel check)."""
    return RuntimeError(f"{what}kernel failed with status {int(err.status)} (which={err.which}, "
                        f"position={err.pos})")


# ------------------------------------------------------------------------- Ctrl-C in a kernel
cdef extern from "_sigint.h":
    int fastmf_sigint_install() nogil
    int fastmf_sigint_restore() nogil
    const fastmf_interrupt *fastmf_sigint_flag_ptr() nogil


cdef extern from "Python.h":
    int PyErr_CheckSignals() except -1


cdef inline const fastmf_interrupt *sigint_watch() except? NULL:
    """Before a long nogil kernel call: the interrupt flag to hand to the kernel, or NULL (not
    watched). A SIGINT already pending is raised here (KeyboardInterrupt) before any work. The flag
    is watched only in the main thread and only while Python's SIGINT handler is its default one
    (the handler that raises KeyboardInterrupt): a program that handles SIGINT itself, or a worker
    thread, sees no change. Pair every non-NULL result with :func:`sigint_unwatch`, with no Python
    code in between (the kernel call only)."""
    PyErr_CheckSignals()
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return NULL
    if not fastmf_sigint_install():
        return NULL
    return fastmf_sigint_flag_ptr()


cdef inline int sigint_unwatch(const fastmf_interrupt *flag) except -1:
    """After the kernel call: restore Python's SIGINT handler; KeyboardInterrupt when a SIGINT
    arrived during the call (the kernel then stopped early: its outputs are partial)."""
    if flag == NULL:
        return 0
    if fastmf_sigint_restore():
        raise KeyboardInterrupt
    return 0
