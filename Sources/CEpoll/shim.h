#ifndef HEARD_CEPOLL_SHIM_H
#define HEARD_CEPOLL_SHIM_H
// epoll and eventfd for the HTTP server's event loops (HTTPServer/Poller.swift). Glibc's Swift
// module has neither header, and `struct epoll_event` is packed on x86-64, which Swift cannot
// lay out: these wrappers take and give its two fields apart.
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

static inline int heard_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event event;
    event.events = events;
    event.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &event);
}

#define HEARD_EPOLL_BATCH 64

/// Waits for at most HEARD_EPOLL_BATCH events; fills tokens[i] and events[i] for each.
static inline int heard_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int timeout) {
    struct epoll_event batch[HEARD_EPOLL_BATCH];
    int count = epoll_wait(epfd, batch, HEARD_EPOLL_BATCH, timeout);
    for (int i = 0; i < count; i++) {
        tokens[i] = batch[i].data.u64;
        events[i] = batch[i].events;
    }
    return count;
}
#endif
