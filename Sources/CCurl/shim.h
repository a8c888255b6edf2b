/* CCurl: typed, non-variadic wrappers over libcurl's variadic setopt/getinfo calls. No logic. */
#ifndef ALERTFANOUT_CCURL_SHIM_H
#define ALERTFANOUT_CCURL_SHIM_H

#include <curl/curl.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <stdint.h>

/* ---- easy handle options, one wrapper per argument kind ---- */
static inline CURLcode cc_easy_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode cc_easy_setopt_ptr(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode cc_easy_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode cc_easy_setopt_off_t(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode cc_easy_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode cc_easy_setopt_write_cb(CURL *h, CURLoption o, curl_write_callback v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode cc_easy_setopt_opensocket_cb(CURL *h, curl_opensocket_callback v) { return curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, v); }
static inline CURLcode cc_easy_setopt_closesocket_cb(CURL *h, curl_closesocket_callback v) { return curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, v); }

/* ---- easy handle info ---- */
static inline CURLcode cc_easy_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode cc_easy_getinfo_off_t(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode cc_easy_getinfo_string(CURL *h, CURLINFO i, char **v) { return curl_easy_getinfo(h, i, v); }

static inline void *cc_private(CURL *h) { void *p = NULL; curl_easy_getinfo(h, CURLINFO_PRIVATE, &p); return p; }

/* ---- multi handle options ---- */
static inline CURLMcode cc_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }
static inline CURLMcode cc_multi_setopt_ptr(CURLM *m, CURLMoption o, void *v) { return curl_multi_setopt(m, o, v); }
static inline CURLMcode cc_multi_setopt_socket_cb(CURLM *m, curl_socket_callback v) { return curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, v); }
static inline CURLMcode cc_multi_setopt_timer_cb(CURLM *m, curl_multi_timer_callback v) { return curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, v); }

/* ---- curl_multi_socket_all: deprecated for event loops, but the one call that makes curl look at every transfer
   again (the reactor's deadline re-check); wrapped so the deprecation stays here ---- */
static inline CURLMcode cc_multi_socket_all(CURLM *m, int *running) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    return curl_multi_socket_all(m, running);
#pragma GCC diagnostic pop
}

/* ---- CURLMsg accessors (the union is awkward from Swift) ---- */
static inline CURLMSG cc_msg_kind(const CURLMsg *m) { return m->msg; }
static inline CURL *cc_msg_easy(const CURLMsg *m) { return m->easy_handle; }
static inline CURLcode cc_msg_result(const CURLMsg *m) { return m->data.result; }

/* ---- constants that Swift imports poorly (macros with casts) ---- */
static inline curl_socket_t cc_socket_timeout(void) { return CURL_SOCKET_TIMEOUT; }
static inline curl_socket_t cc_socket_bad(void) { return CURL_SOCKET_BAD; }
static inline int cc_sockopt_ok(void) { return CURL_SOCKOPT_OK; }

/* ---- epoll, for the reactor's optional epoll-set socket watching (flat arrays: no packed structs in Swift) ---- */
static inline int cc_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
static inline int cc_epoll_ctl(int epfd, int op, int fd, uint32_t events) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.fd = fd;
    return epoll_ctl(epfd, op, fd, &ev);
}
static inline int cc_epoll_poll(int epfd, int *fds, uint32_t *events, int max) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, 0);
    for (int i = 0; i < n; i++) { fds[i] = evs[i].data.fd; events[i] = evs[i].events; }
    return n;
}

#endif
