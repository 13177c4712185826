/* gBCE over each position's own candidates, forward and gradients in one call (scoring.native_gbce).

   Torch has no CPU kernel that takes the (positions, candidates) dot products, the loss and the three gradients
   in one pass: its bagged path (scoring._BaggedGBCE) needs a sampled product, a stable sort of the 3.5 million
   (position, candidate) pairs of an ML-1M batch, two weighted bags and a dozen element-wise passes. Here:

   1. over positions (each thread a fixed range of them): a position's logits from rows of the table, its
      loss, the loss's gradient with respect to each logit (kept for step 2) and the gradient of its hidden row;
   2. over slices of the embedding width (each thread whole slices): every pair of the batch in order, adding
      gradient * hidden into that slice of the candidate's row of the table's gradient. A slice of the table
      (items x 32 floats: 437 KB on ML-1M) stays in a core's cache while the pairs stream past.

   Every output element is summed in one fixed order whatever the thread count (the candidates of a position
   in step 1, the pairs in batch order in step 2): runs are bit-identical with 1, 2 or 16 threads. Float32
   throughout; the loss per position is beta * softplus(-s) for the positive (column 0) and softplus(s) for
   each negative, and the gradients are those of the mean over all pairs (scale = 1 / pairs). */

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

enum { LANES = 16, SLICE = 32, MAX_THREADS = 256 };

/* Sixteen floats; aligned(4) lets a vector be read from any float's address. The compiler maps it to one
   AVX-512 register, two AVX2 ones or four of SSE/NEON, whatever -march=native offers. */
typedef float vec __attribute__((vector_size(LANES * sizeof(float)), aligned(4)));

typedef struct {
    const float *hidden, *table, *bias;
    const int64_t *candidates;
    int64_t positions, dim, items, width;
    float beta, scale;
    float *per_position, *logit_gradient, *grad_hidden, *grad_table, *grad_bias;
    int threads;
    int64_t next_unit; /* step 2's next unit of work */
    int bad_id;        /* set by step 1 on a candidate outside 0..items-1 */
} Problem;

typedef struct {
    Problem *problem; /* one copy shared by the threads of a step (its next_unit is their counter) */
    int thread;
} Task;

static float softplus(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* With -ffast-math the compiler adds the lanes as a tree of shuffles, as fast here as one written out. */
static float sum_of(vec v) {
    float s = 0.0f;
    for (int i = 0; i < LANES; i++) s += v[i];
    return s;
}

/* The loops below are written for n vectors of LANES floats (dim = n * LANES) and inlined with n a constant for
   the usual widths, so that a position's hidden row and its gradient stay in registers; any other width takes
   the same code with n = 0, through memory, one float at a time. */
#define INLINE static inline __attribute__((always_inline))

INLINE float dot(const float *h, const vec *hv, const float *e, int64_t dim, int n) {
    if (n == 0) {
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t d = 0; d < dim; d++) s += h[d] * e[d];
        return s;
    }
    vec even = hv[0] * *(const vec *)e, odd = hv[1] * *(const vec *)(e + LANES);
    for (int v = 2; v < n; v += 2) {
        even += hv[v] * *(const vec *)(e + v * LANES);
        odd += hv[v + 1] * *(const vec *)(e + (v + 1) * LANES);
    }
    return sum_of(even + odd);
}

INLINE void by_position_n(Problem *pr, int64_t first, int64_t last, int n) {
    const int64_t dim = pr->dim, width = pr->width;
    for (int64_t p = first; p < last; p++) {
        const float *h = pr->hidden + p * dim;
        const int64_t *ids = pr->candidates + p * width;
        float *g = pr->logit_gradient + p * width; /* (width,): the logits, then their gradients */
        vec hv[16], gv[16];
        for (int v = 0; v < n; v++) hv[v] = *(const vec *)(h + v * LANES), gv[v] = (vec){0};
        uint64_t largest = 0; /* as unsigned, a negative id is larger than any row */
#pragma omp simd reduction(max : largest)
        for (int64_t c = 0; c < width; c++) largest = (uint64_t)ids[c] > largest ? (uint64_t)ids[c] : largest;
        if (largest >= (uint64_t)pr->items) { /* never read outside the table: refuse the call */
            __atomic_store_n(&pr->bad_id, 1, __ATOMIC_RELAXED);
            return;
        }
        for (int64_t c = 0; c < width; c++)
            g[c] = dot(h, hv, pr->table + ids[c] * dim, dim, n) + (pr->bias ? pr->bias[ids[c]] : 0.0f);
        float loss = pr->beta * softplus(-g[0]);
        g[0] = -pr->beta * sigmoid(-g[0]) * pr->scale;
        float negatives = 0.0f;
#pragma omp simd reduction(+ : negatives)
        for (int64_t c = 1; c < width; c++) {
            negatives += softplus(g[c]);
            g[c] = sigmoid(g[c]) * pr->scale;
        }
        pr->per_position[p] = loss + negatives;
        float *gh = pr->grad_hidden + p * dim;
        if (n == 0) memset(gh, 0, (size_t)dim * sizeof(float));
        for (int64_t c = 0; c < width; c++) {
            const float *e = pr->table + ids[c] * dim;
            if (n == 0) {
                float *restrict out = gh;
                const float w = g[c];
#pragma omp simd
                for (int64_t d = 0; d < dim; d++) out[d] += w * e[d];
            }
            for (int v = 0; v < n; v++) gv[v] += g[c] * *(const vec *)(e + v * LANES);
        }
        for (int v = 0; v < n; v++) *(vec *)(gh + v * LANES) = gv[v];
    }
}

static void by_position(Problem *pr, int64_t first, int64_t last) {
    switch (pr->dim) {
    case 2 * LANES: by_position_n(pr, first, last, 2); break;
    case 4 * LANES: by_position_n(pr, first, last, 4); break;
    case 8 * LANES: by_position_n(pr, first, last, 8); break;
    case 16 * LANES: by_position_n(pr, first, last, 16); break;
    default: by_position_n(pr, first, last, 0);
    }
}

/* The table's gradient in floats [first, first + span) of every row; a whole slice (span = SLICE) with that
   slice of each hidden row in registers. */
INLINE void table_slice(const Problem *pr, int64_t first, int64_t span, int whole) {
    const int64_t dim = pr->dim, width = pr->width;
    for (int64_t i = 0; i < pr->items; i++) memset(pr->grad_table + i * dim + first, 0, (size_t)span * sizeof(float));
    for (int64_t p = 0; p < pr->positions; p++) {
        const float *h = pr->hidden + p * dim + first;
        const int64_t *ids = pr->candidates + p * width;
        const float *g = pr->logit_gradient + p * width;
        if (whole) {
            const vec h0 = *(const vec *)h, h1 = *(const vec *)(h + LANES);
            for (int64_t c = 0; c < width; c++) {
                float *t = pr->grad_table + ids[c] * dim + first;
                *(vec *)t += g[c] * h0;
                *(vec *)(t + LANES) += g[c] * h1;
            }
        } else {
            for (int64_t c = 0; c < width; c++) {
                float *restrict t = pr->grad_table + ids[c] * dim + first;
                const float w = g[c];
#pragma omp simd
                for (int64_t d = 0; d < span; d++) t[d] += w * h[d];
            }
        }
    }
}

static void bias_gradient(const Problem *pr) {
    memset(pr->grad_bias, 0, (size_t)pr->items * sizeof(float));
    const int64_t pairs = pr->positions * pr->width;
    for (int64_t k = 0; k < pairs; k++) pr->grad_bias[pr->candidates[k]] += pr->logit_gradient[k];
}

static int64_t share(int64_t total, int part, int parts) { return total * part / parts; }

static void *positions_task(void *arg) {
    const Task *task = arg;
    Problem *pr = task->problem;
    by_position(pr, share(pr->positions, task->thread, pr->threads),
                share(pr->positions, task->thread + 1, pr->threads));
    return NULL;
}

/* The table's slices and the bias are units of work handed out in turn to whichever thread is free (the bias
   first, the smallest of them). Each unit writes only its own outputs, so which thread takes it changes
   nothing in the result. */
static void *slices_task(void *arg) {
    const Task *task = arg;
    Problem *pr = task->problem;
    const int with_bias = pr->grad_bias != NULL;
    const int64_t units = (pr->dim + SLICE - 1) / SLICE + with_bias;
    for (;;) {
        const int64_t unit = __atomic_fetch_add(&pr->next_unit, 1, __ATOMIC_RELAXED);
        if (unit >= units) break;
        if (with_bias && unit == 0) {
            bias_gradient(pr);
            continue;
        }
        const int64_t first = (unit - with_bias) * SLICE;
        if (pr->dim - first >= SLICE) table_slice(pr, first, SLICE, 1);
        else table_slice(pr, first, pr->dim - first, 0);
    }
    return NULL;
}

/* Runs task as threads 1..threads-1 and, on the calling thread, as thread 0. */
static int run_threads(void *(*task)(void *), const Problem *pr, int threads) {
    pthread_t handles[MAX_THREADS];
    Task tasks[MAX_THREADS];
    int started = 0;
    Problem shared = *pr;
    shared.threads = threads;
    for (int t = 0; t < threads; t++) tasks[t] = (Task){&shared, t};
    for (int t = 1; t < threads; t++, started++)
        if (pthread_create(&handles[t], NULL, task, &tasks[t]) != 0) break;
    if (started == threads - 1) task(&tasks[0]);
    for (int t = 1; t <= started; t++) pthread_join(handles[t], NULL);
    if (started != threads - 1) return -1;
    return shared.bad_id ? -2 : 0;
}

/* Returns 0; -1 when a thread could not be started, -2 when a candidate is not a row of the table (the outputs
   are then incomplete). */
int gsasrec_gbce(const float *hidden, int64_t positions, int64_t dim, const float *table, int64_t items,
                 const float *bias, const int64_t *candidates, int64_t width, double beta, double scale,
                 float *per_position, float *logit_gradient, float *grad_hidden, float *grad_table,
                 float *grad_bias, int threads) {
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    const int64_t slices = (dim + SLICE - 1) / SLICE;
    Problem pr = {hidden, table, bias, candidates, positions, dim, items, width, (float)beta, (float)scale,
                  per_position, logit_gradient, grad_hidden, grad_table, grad_bias, threads, 0, 0};
    const int failed = run_threads(positions_task, &pr, positions < threads ? (int)(positions > 0 ? positions : 1)
                                                                            : threads);
    if (failed) return failed;
    const int64_t units = slices + (grad_bias != NULL);
    return run_threads(slices_task, &pr, units < threads ? (int)units : threads);
}
