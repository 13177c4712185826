/* Torch's CPU random numbers, the same numbers, drawn faster (mersenne.py).

   A torch.Generator on a CPU is a Mersenne Twister (MT19937) that torch steps one number at a time under a lock:
   random_(low, high) on the 3.5 million negatives of an ML-1M batch took 6.3 ms, on one core, and the dropout
   masks' random_ another 4. Here the generator's state (from Generator.get_state(), handed back with
   set_state()) is stepped a whole block of 624 words at a time, and each word is tempered and mapped to its
   range on vectors. Each number is the one torch's random_ would give at that place of the stream:

   - random_(low, high) for the ranges mersenne.py hands over (below 2^24; torch takes 64 bits from 2^28 on): the
     next 32-bit output modulo (high - low), plus low;
   - random_() over all 64 bits of an int64: the next two outputs, the first as the high half;
   - a dropout mask: such 64-bit words read as 8- or 16-bit integers and compared with a threshold.

   mersenne.py checks at first use that this file reproduces torch's own draws, and leaves them to torch if not. */

#include <stdint.h>
#include <string.h>

enum { WORDS = 624, SHIFT = 397 };

/* 64-bit words are read and written as their 32-bit halves and as 8- or 16-bit integers: through these types,
   which the compiler knows may alias any other. */
typedef uint32_t half_word __attribute__((may_alias));
typedef int8_t draw8 __attribute__((may_alias));
typedef int16_t draw16 __attribute__((may_alias));

#define UPPER_BIT 0x80000000u
#define LOWER_BITS 0x7fffffffu
#define TWIST_XOR 0x9908b0dfu

/* Where torch's get_state() puts the engine in its bytes: a 64-bit seed, the count of words `left` before the
   next block is made (int32), a flag (int32), the index of the `next` word (64 bits), the 624 words as 64-bit
   integers; then normal-distribution caches, which the draws here leave alone. */
enum { LEFT_AT = 8, NEXT_AT = 16, WORDS_AT = 24, STATE_BYTES = WORDS_AT + WORDS * 8 };

typedef struct {
    uint32_t words[WORDS];
    int64_t left, next; /* as torch's engine: a draw decrements left, makes a new block when it reaches 0, and
                           returns words[next++] tempered */
} Engine;

static void load(Engine *engine, const uint8_t *state) {
    int32_t left;
    uint64_t next, word;
    memcpy(&left, state + LEFT_AT, sizeof left);
    memcpy(&next, state + NEXT_AT, sizeof next);
    for (int i = 0; i < WORDS; i++) {
        memcpy(&word, state + WORDS_AT + 8 * i, sizeof word);
        engine->words[i] = (uint32_t)word;
    }
    engine->left = left, engine->next = (int64_t)next;
}

static void store(const Engine *engine, uint8_t *state) {
    int32_t left = (int32_t)engine->left;
    uint64_t next = (uint64_t)engine->next;
    memcpy(state + LEFT_AT, &left, sizeof left);
    memcpy(state + NEXT_AT, &next, sizeof next);
    for (int i = 0; i < WORDS; i++) {
        uint64_t word = engine->words[i];
        memcpy(state + WORDS_AT + 8 * i, &word, sizeof word);
    }
}

static inline uint32_t twisted(uint32_t word, uint32_t following, uint32_t far) {
    uint32_t y = (word & UPPER_BIT) | (following & LOWER_BITS);
    return far ^ (y >> 1) ^ ((0u - (y & 1u)) & TWIST_XOR);
}

/* The next block of 624 words, in place. Each loop reads words at least 227 places away from the one it writes,
   or the one just after it before writing, so both run on vectors. */
static void next_block(uint32_t *w) {
    for (int i = 0; i < WORDS - SHIFT; i++) w[i] = twisted(w[i], w[i + 1], w[i + SHIFT]);
    for (int i = WORDS - SHIFT; i < WORDS - 1; i++) w[i] = twisted(w[i], w[i + 1], w[i + SHIFT - WORDS]);
    w[WORDS - 1] = twisted(w[WORDS - 1], w[0], w[SHIFT - 1]);
}

static inline uint32_t tempered(uint32_t y) {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

/* Up to `wanted` words (untempered) from the engine, at most the rest of its block, or a new block's first ones:
   returns how many and points *from at them. */
static int64_t take(Engine *engine, int64_t wanted, const uint32_t **from) {
    int64_t ready = engine->left - 1; /* words left in the block before a draw makes the next one */
    if (ready <= 0) {
        next_block(engine->words);
        engine->next = 0;
        /* torch makes the block on the draw that takes its word 0: that draw leaves left at 624 */
        engine->left = WORDS + 1;
        ready = WORDS;
    }
    int64_t count = wanted < ready ? wanted : ready;
    *from = engine->words + engine->next;
    engine->next += count;
    engine->left -= count;
    return count;
}

/* x mod range for x < 2^32 and 0 < range < 2^32: the quotient from a double's product, then corrected by one
   either way (the product's rounding can leave it one off, never more). */
static inline int64_t modulo(uint32_t x, int64_t range, double inverse) {
    int64_t quotient = (int64_t)((double)x * inverse);
    int64_t rest = (int64_t)x - quotient * range;
    rest += rest < 0 ? range : 0;
    rest -= rest >= range ? range : 0;
    return rest;
}

/* rows x cols numbers in low..low+range-1 into out (row r's at out[r * row_stride ...]), drawn in row order as
   torch's random_(low, low + range) on that view. */
int gsasrec_random_ints(uint8_t *state, int64_t *out, int64_t rows, int64_t cols, int64_t row_stride,
                        int64_t low, int64_t range) {
    if (range <= 0 || range > (int64_t)UINT32_MAX || cols < 0 || rows < 0) return 1;
    Engine engine;
    load(&engine, state);
    double inverse = 1.0 / (double)range;
    for (int64_t r = 0; r < rows; r++) {
        int64_t *row = out + r * row_stride;
        for (int64_t c = 0; c < cols;) {
            const uint32_t *words;
            int64_t count = take(&engine, cols - c, &words);
            for (int64_t i = 0; i < count; i++) row[c + i] = low + modulo(tempered(words[i]), range, inverse);
            c += count;
        }
    }
    store(&engine, state);
    return 0;
}

/* count 64-bit words from the engine into out, as torch's random_() over an int64 tensor's whole range: each word
   the next two outputs, the first as the high half. */
static void next_words(Engine *engine, uint64_t *out, int64_t count) {
    half_word *halves = (half_word *)out; /* 2 * count outputs, then paired in place */
    for (int64_t c = 0; c < 2 * count;) {
        const uint32_t *words;
        int64_t n = take(engine, 2 * count - c, &words);
        for (int64_t i = 0; i < n; i++) halves[c + i] = tempered(words[i]);
        c += n;
    }
    for (int64_t i = 0; i < count; i++) {
        uint64_t pair;
        memcpy(&pair, out + i, sizeof pair); /* two outputs: the first in the low 4 bytes (little-endian) */
        out[i] = (pair << 32) | (pair >> 32);
    }
}

int gsasrec_random_words(uint8_t *state, uint64_t *out, int64_t count) {
    Engine engine;
    load(&engine, state);
    next_words(&engine, out, count);
    store(&engine, state);
    return 0;
}

static inline uint16_t bfloat16_of(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16); /* to nearest, ties to even, as torch */
}

enum { CHUNK_WORDS = 512 };

/* dropout.kept_scale's mask in one pass: count elements of `bits` (8 or 16) random bits each, read as signed
   integers from the words gsasrec_random_words would draw (count * bits / 64 of them, rounded up; each word's
   bytes in memory order), `scale` where the draw is at least `threshold` and 0 elsewhere; float32 into out, or
   bfloat16 (to nearest, as torch rounds) with bfloat16 set. The words are drawn a chunk at a time into a buffer on
   the stack, so that the comparisons run on vectors over memory that is in cache. */
int gsasrec_random_mask(uint8_t *state, void *out, int64_t count, int bits, int64_t threshold, float scale,
                        int bfloat16) {
    if (bits != 8 && bits != 16) return 1;
    int64_t per_word = 64 / bits, words = (count + per_word - 1) / per_word;
    float *floats = out;
    uint16_t *halves = out;
    uint16_t kept16 = bfloat16_of(scale);
    uint64_t chunk[CHUNK_WORDS];
    Engine engine;
    load(&engine, state);
    for (int64_t word = 0; word < words; word += CHUNK_WORDS) {
        int64_t n = words - word < CHUNK_WORDS ? words - word : CHUNK_WORDS;
        next_words(&engine, chunk, n);
        int64_t first = word * per_word, last = first + n * per_word < count ? first + n * per_word : count;
        const draw8 *draws8 = (const draw8 *)chunk;
        const draw16 *draws16 = (const draw16 *)chunk;
        if (bits == 8 && bfloat16)
            for (int64_t e = first; e < last; e++) halves[e] = draws8[e - first] >= threshold ? kept16 : 0;
        else if (bits == 8)
            for (int64_t e = first; e < last; e++) floats[e] = draws8[e - first] >= threshold ? scale : 0.0f;
        else if (bfloat16)
            for (int64_t e = first; e < last; e++) halves[e] = draws16[e - first] >= threshold ? kept16 : 0;
        else
            for (int64_t e = first; e < last; e++) floats[e] = draws16[e - first] >= threshold ? scale : 0.0f;
    }
    store(&engine, state);
    return 0;
}
