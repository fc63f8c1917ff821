/* linger.c - staged close (see linger.h). */
#include "linger.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Reads per readiness event, as libuv's uv__read caps a stream at 32 reads per event: a client
 * that sends fast cannot keep the driver in here. Level-triggered epoll comes back for more. */
#define LINGER_READS_PER_EVENT 32

struct linger_conn {
    int fd;
    uint64_t deadline_ms;
    uint64_t dropped;
    struct linger_conn *prev, *next;
};

static uint64_t linger_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reads and drops up to `budget` reads' worth. Returns true when the linger is over: end of
 * file, an error other than "nothing yet", or the byte bound. */
static bool linger_drain(int fd, uint64_t *dropped, int budget)
{
    char buf[8192];
    for (int i = 0; i < budget; i++) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            *dropped += (uint64_t)n;
            if (*dropped >= LINGER_BYTES_MAX)
                return true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    }
    return false;
}

void linger_init(struct linger_set *l, int epfd)
{
    *l = (struct linger_set){.epfd = epfd};
}

static void linger_unlink(struct linger_set *l, struct linger_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    l->count--;
}

/* Closing the descriptor also takes it out of the epoll instance (it is the last reference). */
static void linger_end(struct linger_set *l, struct linger_conn *c)
{
    linger_unlink(l, c);
    close(c->fd);
    free(c);
}

void linger_add(struct linger_set *l, int fd)
{
    struct linger_conn *c = l->count < LINGER_CONNS_MAX ? calloc(1, sizeof(*c)) : NULL;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (c == NULL || epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(c);
        close(fd);
        return;
    }
    c->fd = fd;
    c->deadline_ms = linger_now_ms() + LINGER_TIME_MS;
    c->prev = l->tail;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    l->count++;
}

void linger_ready(struct linger_set *l, void *ptr)
{
    struct linger_conn *c = ptr;
    if (linger_drain(c->fd, &c->dropped, LINGER_READS_PER_EVENT))
        linger_end(l, c);
}

/* Ends the oldest lingering socket. */
static void linger_end_oldest(struct linger_set *l)
{
    struct linger_conn *c = l->head;
    l->head = c->next;
    if (l->head != NULL)
        l->head->prev = NULL;
    else
        l->tail = NULL;
    l->count--;
    close(c->fd);
    free(c);
}

void linger_expire(struct linger_set *l)
{
    uint64_t now = linger_now_ms();
    while (l->head != NULL && l->head->deadline_ms <= now)
        linger_end_oldest(l);
}

int linger_timeout_ms(const struct linger_set *l)
{
    if (l->head == NULL)
        return -1;
    uint64_t now = linger_now_ms();
    return l->head->deadline_ms > now ? (int)(l->head->deadline_ms - now) : 0;
}

void linger_close(struct linger_set *l)
{
    while (l->head != NULL)
        linger_end_oldest(l);
}

void linger_block(int fd)
{
    uint64_t deadline = linger_now_ms() + LINGER_TIME_MS, dropped = 0;
    for (;;) {
        uint64_t now = linger_now_ms();
        if (now >= deadline)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || linger_drain(fd, &dropped, LINGER_READS_PER_EVENT))
            break;
    }
    close(fd);
}
