/* fastmf C kernels: shared definitions.
 *
 * Every kernel in csrc/ is plain C99: no Python headers, no printing, no globals, no hidden random
 * state. A kernel returns an fastmf_status; the Cython wrapper turns a non-zero status into a Python
 * exception with context. Buffers are owned by the caller unless a function says otherwise.
 */
#ifndef FASTMF_COMMON_H
#define FASTMF_COMMON_H

#include <stdint.h>

typedef enum {
    FASTMF_OK = 0,
    FASTMF_ERR_NOMEM = 1,      /* an allocation failed */
    FASTMF_ERR_INDEX = 2,      /* an index lies outside [0, n); *bad_pos says where */
    FASTMF_ERR_VALUE = 3,      /* a non-finite or otherwise invalid value; *bad_pos says where */
    FASTMF_ERR_NOT_PD = 4,     /* a linear system is not positive definite */
    FASTMF_ERR_DIVERGED = 5,   /* the loss or a factor became non-finite */
    FASTMF_ERR_PARSE = 6       /* malformed text; *bad_pos gives the line */
} fastmf_status;

/* 1 when this translation unit was compiled with OpenMP, else 0. */
int fastmf_openmp_enabled(void);

/* Threads an OpenMP parallel region would use by default (1 without OpenMP). */
int fastmf_max_threads(void);

#endif
