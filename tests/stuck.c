/*
 * tests/stuck.c - a server that never answers, for testing the test harness.
 *
 * tests/harness.bats runs a small bats file against it to prove that a test
 * fails within its deadline, and leaves no process behind, whatever the
 * program under test does. It behaves like the worst of student servers:
 *
 * Usage: stuck mute PORT     accept every client, never read, never answer,
 *                            never close
 *        stuck forker PORT   fork a child for every client; the child never
 *                            answers and never exits
 * Both ignore SIGTERM (the parent and every child), so only SIGKILL stops them,
 * and both print "Listening on port N" like the real servers.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int sockfd, fd, forker;

    if (argc != 3 || (strcmp(argv[1], "mute") != 0 && strcmp(argv[1], "forker") != 0)) {
        fprintf(stderr, "usage: %s mute|forker PORT\n", argv[0]);
        return 2;
    }
    forker = strcmp(argv[1], "forker") == 0;
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sockfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((unsigned short) strtoul(argv[2], NULL, 10));
    if (sockfd < 0 || bind(sockfd, (struct sockaddr *) &addr, sizeof addr) < 0
        || listen(sockfd, SOMAXCONN) < 0
        || getsockname(sockfd, (struct sockaddr *) &addr, &len) < 0) {
        perror("stuck");
        return 1;
    }
    printf("Listening on port %u\n", (unsigned) ntohs(addr.sin_port));
    fflush(stdout);
    for (;;) {
        fd = accept(sockfd, NULL, NULL);
        if (fd < 0 || !forker)
            continue;               /* mute: the connection stays open, unread */
        if (fork() == 0) {
            close(sockfd);
            for (;;)
                pause();            /* the child: holds the client forever */
        }
        close(fd);
    }
}
