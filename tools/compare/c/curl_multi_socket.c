/* curl_multi_socket: the plain C baseline for the reactor — libcurl's multi_socket API on epoll, N transfers
 * kept in flight against one URL for a fixed time. Written for AlertFanout's comparisons; loopback use only.
 *   usage: curl_multi_socket URL CONCURRENCY SECONDS [reuse|churn]
 *   prints: requests N errors E seconds S */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static int epfd;
static long timeout_ms = -1;
static long completed, errors, inflight;
static int stopping;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t discard(char *p, size_t s, size_t n, void *u) { (void)p; (void)u; return s * n; }

static int on_socket(CURL *e, curl_socket_t s, int what, void *u, void *sp) {
    (void)e; (void)u;
    struct epoll_event ev = {0};
    ev.data.fd = s;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, s, &ev) != 0) epoll_ctl(epfd, EPOLL_CTL_ADD, s, &ev);
    (void)sp;
    return 0;
}

static int on_timer(CURLM *m, long ms, void *u) { (void)m; (void)u; timeout_ms = ms; return 0; }

static CURL *make(const char *url, int churn) {
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, churn ? 1L : 0L);
    return e;
}

static void drain(CURLM *m, double end) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *e = msg->easy_handle;
        if (msg->data.result == CURLE_OK) completed++; else errors++;
        curl_multi_remove_handle(m, e);
        if (!stopping && now() < end) curl_multi_add_handle(m, e); else { curl_easy_cleanup(e); inflight--; }
    }
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s URL CONCURRENCY SECONDS [reuse|churn]\n", argv[0]); return 64; }
    const char *url = argv[1];
    int conc = atoi(argv[2]);
    double secs = atof(argv[3]);
    int churn = argc > 4 && strcmp(argv[4], "churn") == 0;
    curl_global_init(CURL_GLOBAL_ALL);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conc);
    double start = now(), end = start + secs;
    for (int i = 0; i < conc; i++) { curl_multi_add_handle(m, make(url, churn)); inflight++; }
    int running = 1;
    struct epoll_event evs[256];
    curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
    while (inflight > 0) {
        if (now() >= end) stopping = 1;
        int wait = timeout_ms < 0 ? 100 : (int)timeout_ms;
        if (wait > 100) wait = 100;
        int n = epoll_wait(epfd, evs, 256, wait);
        if (n <= 0) {
            curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
        } else {
            for (int i = 0; i < n; i++) {
                int bits = (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR) ? CURL_CSELECT_IN : 0) | (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0);
                curl_multi_socket_action(m, evs[i].data.fd, bits, &running);
            }
        }
        drain(m, end);
        if (timeout_ms == 0) { curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running); drain(m, end); }
    }
    double elapsed = now() - start;
    printf("requests %ld errors %ld seconds %.3f\n", completed, errors, elapsed);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return 0;
}
