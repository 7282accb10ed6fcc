/* Parallel gzip for the envelope, as pigz does it.
 *
 * The input is cut into CS_CHUNK blocks that are deflated on several threads at once, each primed
 * with the previous block's last 32 KiB as dictionary and ended with a sync flush, so their
 * concatenation is ONE ordinary deflate stream inside one ordinary gzip member (any gunzip, Node's
 * zlib or Python reads it). The CRC-32 of the blocks is combined with crc32_combine. Compression
 * is what a backup spends its time on; this makes it scale with the cores while memory stays
 * bounded (SLOTS(workers) blocks in flight).
 *
 * The workers are a pool that lives for the whole object and take blocks in order as they are
 * read, like pigz's; the calling thread reads, MACs, and then encrypts, hashes and writes finished
 * blocks in order (cs_stream_emit). An earlier design compressed in batches (a thread per block,
 * joined per batch): every batch waited for its slowest block, and on a busy host the cores sat
 * idle at each barrier. The output does not depend on the number of threads: each block's bytes
 * depend only on its input and its dictionary. */
#include "envelope_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define DICT        (32u * 1024u)
#define MAX_WORKERS 64
/* Enough blocks in flight that every worker has one while the calling thread emits and reads. */
#define SLOTS(workers) (2 * (workers) + 2)

enum { SLOT_FREE, SLOT_QUEUED, SLOT_BUSY, SLOT_DONE };

/* One block of the input and its compressed form. Its buffers live in the pool's arena. */
typedef struct block {
    unsigned char *in;       /* CS_CHUNK bytes of input (fewer only for the last block) */
    size_t in_len;           /* bytes in `in` */
    unsigned char *dict;     /* the last DICT bytes of the block before, as deflate dictionary */
    size_t dict_len;         /* 0 for the first block */
    unsigned char *out;      /* raw deflate, ended by a sync flush */
    size_t out_cap, out_len; /* room in `out`, and what the block deflated to */
    uint32_t crc;            /* CRC-32 of `in`, combined in order by the calling thread */
    int level;               /* zlib level, -1..9 */
    int failed;              /* deflate failed: the seal fails with CS_ERR_ZLIB */
    int state;               /* SLOT_*, under the pool's mutex */
} block;

/* The pool of one object: the workers' queue, and the calling thread's reading and emitting
 * positions. Blocks are numbered in input order; block n lives in slot n % nslots, so a slot is
 * reused only once its block was emitted (next_read - next_emit <= nslots). */
typedef struct pool {
    /* Shared with the workers, under `mu`. */
    pthread_mutex_t mu;
    pthread_cond_t work; /* a block was queued, or stop */
    pthread_cond_t done; /* a block was compressed */
    block *slots;        /* SLOTS(workers) of them */
    int nslots;          /* fixed for the object's life */
    int64_t next_job;    /* the next block a worker takes */
    int64_t queued;      /* blocks handed to the pool so far */
    int stop;            /* set once, at the end: workers leave after their current block */
    /* Owned by the calling thread. */
    pthread_t tids[MAX_WORKERS];
    int started;          /* workers running; with none, the calling thread deflates itself */
    unsigned char *arena; /* the slots' buffers */
    unsigned char *tail;  /* the last DICT bytes read: the next block's dictionary */
    size_t tail_len;      /* bytes in `tail` */
    int64_t next_read;    /* the next block to read */
    int64_t next_emit;    /* the next block to emit */
    int eof;              /* the input has ended: nothing more to read */
    uint32_t crc;         /* CRC-32 of the plaintext emitted so far */
} pool;

/* ------------------------------------------------------------------------------------------------
 * Workers
 * ---------------------------------------------------------------------------------------------- */

static void deflate_block(block *b) {
    z_stream z;
    memset(&z, 0, sizeof z);
    b->failed = 1;
    /* windowBits -15: raw deflate; the gzip header and trailer are written once around all
     * blocks. */
    if (deflateInit2(&z, b->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return;
    if (b->dict_len && deflateSetDictionary(&z, b->dict, (uInt)b->dict_len) != Z_OK) {
        deflateEnd(&z);
        return;
    }
    z.next_in = b->in;
    z.avail_in = (uInt)b->in_len;
    z.next_out = b->out;
    z.avail_out = (uInt)b->out_cap;
    int zr = deflate(&z, Z_SYNC_FLUSH);
    if ((zr == Z_OK || zr == Z_BUF_ERROR) && z.avail_in == 0 && z.avail_out > 0) {
        b->out_len = b->out_cap - z.avail_out;
        b->crc = (uint32_t)crc32(0, b->in, (uInt)b->in_len);
        b->failed = 0;
    }
    deflateEnd(&z);
}

static void *pool_worker(void *arg) {
    pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->next_job >= p->queued) pthread_cond_wait(&p->work, &p->mu);
        if (p->stop) break;
        block *b = &p->slots[p->next_job % p->nslots];
        p->next_job++;
        b->state = SLOT_BUSY;
        pthread_mutex_unlock(&p->mu);
        deflate_block(b);
        pthread_mutex_lock(&p->mu);
        b->state = SLOT_DONE;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ------------------------------------------------------------------------------------------------
 * The pool's life cycle
 * ---------------------------------------------------------------------------------------------- */

/* Allocates the slots and starts up to `threads` workers (1..MAX_WORKERS). */
static int32_t pool_start(pool *p, int level, int threads, cs_error *err) {
    int workers = threads < 1 ? 1 : (threads > MAX_WORKERS ? MAX_WORKERS : threads);
    const size_t out_cap = compressBound(CS_CHUNK) + 64;
    const size_t slot_bytes = CS_CHUNK + out_cap + DICT;
    memset(p, 0, sizeof *p);
    p->nslots = SLOTS(workers);
    p->slots = calloc((size_t)p->nslots, sizeof *p->slots);
    if (p->slots) p->arena = malloc((size_t)p->nslots * slot_bytes);
    if (p->arena) p->tail = malloc(DICT);
    if (!p->slots || !p->arena || !p->tail) {
        free(p->slots);
        free(p->arena);
        return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    }
    for (int i = 0; i < p->nslots; i++) {
        unsigned char *base = p->arena + (size_t)i * slot_bytes;
        p->slots[i].in = base;
        p->slots[i].out = base + CS_CHUNK;
        p->slots[i].dict = base + CS_CHUNK + out_cap;
        p->slots[i].out_cap = out_cap;
        p->slots[i].level = level;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    while (p->started < workers && pthread_create(&p->tids[p->started], NULL, pool_worker, p) == 0)
        p->started++;
    /* With no worker at all (thread creation refused), this thread compresses each block itself. */
    return CS_OK;
}

/* Workers finish the block they hold (its buffers must outlive them) and leave the rest; then
 * everything is freed. */
static void pool_stop(pool *p) {
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++) pthread_join(p->tids[i], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    free(p->tail);
    free(p->arena);
    free(p->slots);
}

/* ------------------------------------------------------------------------------------------------
 * The calling thread: read in order, emit in order
 * ---------------------------------------------------------------------------------------------- */

/* Reads (and MACs) the next block into its slot, with the end of the block before as dictionary.
 * `*got_one` is 0 when the input had ended. */
static int32_t read_block(pool *p, cs_stream *s, block *b, int *got_one, cs_error *err) {
    *got_one = 0;
    long got = cs_stream_read_chunk(s, b->in);
    if (got < 0) return cs_fail_errno(err, errno, "reading %s", s->in_path);
    if (got == 0) {
        p->eof = 1;
        return CS_OK;
    }
    if ((size_t)got < CS_CHUNK) p->eof = 1;
    b->in_len = (size_t)got;
    b->dict_len = p->tail_len;
    memcpy(b->dict, p->tail, p->tail_len);
    p->tail_len = b->in_len < DICT ? b->in_len : DICT;
    memcpy(p->tail, b->in + b->in_len - p->tail_len, p->tail_len);
    cs_stream_mac_update(s, b->in, b->in_len);
    p->next_read++;
    *got_one = 1;
    return CS_OK;
}

/* Keeps every slot busy: reads blocks in order and hands them to the workers. */
static int32_t pool_fill(pool *p, cs_stream *s, cs_error *err) {
    while (!p->eof && p->next_read - p->next_emit < p->nslots) {
        block *b = &p->slots[p->next_read % p->nslots];
        int got_one = 0;
        int32_t status = read_block(p, s, b, &got_one, err);
        if (status != CS_OK) return status;
        if (!got_one) break;
        if (p->started == 0) {
            deflate_block(b);
            b->state = SLOT_DONE;
            continue;
        }
        pthread_mutex_lock(&p->mu);
        b->state = SLOT_QUEUED;
        p->queued = p->next_read;
        pthread_cond_signal(&p->work);
        pthread_mutex_unlock(&p->mu);
    }
    return CS_OK;
}

/* Waits for the oldest block to be compressed, then encrypts, hashes and writes it. */
static int32_t pool_emit_oldest(pool *p, cs_stream *s, cs_error *err) {
    block *b = &p->slots[p->next_emit % p->nslots];
    pthread_mutex_lock(&p->mu);
    while (b->state != SLOT_DONE) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    if (b->failed) return cs_fail(err, CS_ERR_ZLIB, 0, "deflate failed");
    p->crc = (uint32_t)crc32_combine(p->crc, b->crc, (z_off_t)b->in_len);
    s->done += (int64_t)b->in_len;
    int32_t status = cs_stream_emit(s, b->out, b->out_len, err);
    b->state = SLOT_FREE;
    p->next_emit++;
    return status;
}

/* An empty final block closes the deflate stream; then CRC-32 and size, little-endian. */
static int32_t emit_trailer(cs_stream *s, uint32_t crc, int64_t size, cs_error *err) {
    unsigned char trailer[10] = {0x03, 0x00};
    for (int i = 0; i < 4; i++) trailer[2 + i] = (unsigned char)(crc >> (8 * i));
    for (int i = 0; i < 4; i++) trailer[6 + i] = (unsigned char)((uint64_t)size >> (8 * i));
    return cs_stream_emit(s, trailer, sizeof trailer, err);
}

int32_t cs_seal_gzip(cs_stream *s, int level, int threads, cs_error *err) {
    pool p;
    int32_t status = pool_start(&p, level, threads, err);
    if (status != CS_OK) return status;
    /* gzip header: no name, no mtime, OS = Unix, as Node's zlib.createGzip() writes it. */
    static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    status = cs_stream_emit(s, header, sizeof header, err);
    while (status == CS_OK) {
        status = pool_fill(&p, s, err);
        if (status != CS_OK || p.next_emit == p.next_read) break;
        status = pool_emit_oldest(&p, s, err);
        if (status == CS_OK) status = cs_stream_progress(s, err);
    }
    pool_stop(&p);
    if (status == CS_OK) status = emit_trailer(s, p.crc, s->done, err);
    return status;
}
