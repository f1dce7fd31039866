# Declarations shared by the Cython wrappers of csrc/ (cimported, never imported): the status codes
# every C kernel returns (csrc/common.h), the OpenMP probes, and the fused float type of the
# kernels that come in float32 and float64.

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
    int fastmf_openmp_enabled() nogil
    int fastmf_max_threads() nogil
