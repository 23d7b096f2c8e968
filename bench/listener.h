/*
 * bench/listener.h - the listening socket that bench/minfork.c and
 * bench/nullserver.c share: the same steps as the servers' open_listener()
 * and announce_port(), without their explanations (read those in
 * step1-single/server.c). Both programs take the port as it is, unchecked:
 * bench/bench.sh always passes 0.
 */
#ifndef BENCH_LISTENER_H
#define BENCH_LISTENER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void die(const char *msg)
{
    perror(msg);
    exit(1);
}

/* open_listener: listens on every IPv4 address, announces the port. */
static int open_listener(const char *port_text)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int fd, on = 1;
    long port = strtol(port_text, NULL, 10);

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0)
        die("setsockopt");
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons((unsigned short) port);
    if (bind(fd, (struct sockaddr *) &addr, sizeof addr) < 0 || listen(fd, SOMAXCONN) < 0)
        die("bind/listen");
    if (getsockname(fd, (struct sockaddr *) &addr, &len) < 0)
        die("getsockname");
    printf("Listening on port %u\n", (unsigned) ntohs(addr.sin_port));
    fflush(stdout);
    return fd;
}

#endif
