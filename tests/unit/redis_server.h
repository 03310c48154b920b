/* redis_server.h — a real redis-server for the tests that need one: started on a free loopback
 * port with the given extra arguments (e.g. "--requirepass", "pw"), persistence off unless
 * asked, and stopped with SIGTERM. Header-only; each test program includes it once. */
#ifndef SCOUT_TEST_REDIS_SERVER_H
#define SCOUT_TEST_REDIS_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct redis_server {
    pid_t pid;
    int port;
};

/* A port nobody listens on right now (bind to port 0, read it back, close). */
static inline int redis_free_port(void) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0) return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static inline int redis_port_open(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    if (fd < 0) return 0;
    ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Starts redis-server with extra (NULL-terminated) arguments on `port` (0: a free one).
 * 0 once it accepts connections, -1 if it did not within 5 s. */
static inline int redis_server_start(struct redis_server *rs, int port, const char *const *extra) {
    char portbuf[16];
    const char *argv[40] = {"redis-server", "--port", portbuf, "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"};
    int n = 13;
    rs->port = port ? port : redis_free_port();
    snprintf(portbuf, sizeof portbuf, "%d", rs->port);
    for (int i = 0; extra && extra[i] && n < 39; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    rs->pid = fork();
    if (rs->pid < 0) return -1;
    if (rs->pid == 0) {
        freopen("/dev/null", "w", stdout);
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        if (redis_port_open(rs->port)) return 0;
        nanosleep(&ts, NULL);
    }
    return -1;
}

static inline void redis_server_stop(struct redis_server *rs) {
    int st;
    if (rs->pid <= 0) return;
    kill(rs->pid, SIGTERM);
    waitpid(rs->pid, &st, 0);
    rs->pid = 0;
}

#endif
