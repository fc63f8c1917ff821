/* trace_impl.h - what trace.c (recording) and trace_write.c (the file) share. Nothing else
 * includes it. */
#ifndef TRIAD_TRACE_IMPL_H
#define TRIAD_TRACE_IMPL_H

#include "trace.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define TRACE_NAME_LEN   32
#define TRACE_TRACKS_MAX 1100 /* synthetic tracks: the GIL, up to 1024 Ps, spares */
#define TRACE_SEQS_MAX   8

/* A chunk is filled by its owner thread only; `n` is published with a release store after the
 * record is written, and read with an acquire load by the writer, so the writer never reads a
 * record being written, even if a thread still runs at exit (a drain that timed out). */
struct trace_chunk {
    struct trace_chunk *_Atomic next;
    _Atomic uint32_t n;
    struct trace_rec recs[TRACE_CHUNK];
};

/* One per thread that ever recorded or was named. Kept until exit, even after its thread has
 * gone (its records are still to be written); kernel thread ids may be reused by a later
 * thread, whose records then share the track, in later time. */
struct trace_buf {
    struct trace_buf *next;           /* the registry, under trace_state.mu */
    struct trace_chunk *_Atomic head; /* first chunk, NULL until the first record */
    struct trace_chunk *tail;         /* owner only */
    _Atomic uint64_t dropped;         /* refused records, once the budget was spent */
    uint32_t tid;
    int sort; /* under trace_state.mu, like name */
    char name[TRACE_NAME_LEN];
};

struct trace_track {
    uint32_t tid;
    int sort;
    char name[TRACE_NAME_LEN];
};

struct trace_state {
    pthread_mutex_t mu; /* the registry, the names, the tracks: all rare */
    struct trace_buf *bufs;
    struct trace_track tracks[TRACE_TRACKS_MAX];
    unsigned ntracks;
    struct {
        const char *name;
        unsigned next;
    } seqs[TRACE_SEQS_MAX];
    unsigned nseqs;
    char *path;
    char process[TRACE_NAME_LEN];
    bool forked_parent; /* this process forked workers: they write, it does not */
    bool worker;        /* a forked worker: writes path.<pid> */
    uint64_t budget;    /* records */
    /* Every chunk comes from one arena of budget records, mapped and touched by the first
     * thread that records (see trace.c); chunks are handed out by an atomic index. */
    struct trace_chunk *arena;
    long nchunks;
    _Atomic long next_chunk;
    atomic_bool full;
    _Atomic uint64_t full_at; /* ns when the budget ran out */
};

extern struct trace_state trace_state;

/* Writes the file (trace_write.c). Called at exit. */
void trace_write(void);

#endif
